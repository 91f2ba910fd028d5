-- Give every KEYS[i] a TTL of ARGV[1] milliseconds: set_many() with a timeout sends it
-- after an MSET in one MULTI/EXEC, so the values never pass through Lua (one PEXPIRE call
-- per key here costs the server much less than one SET call per key carrying the value).
local pexpire, call, ttl = 'PEXPIRE', redis.call, ARGV[1]
for i = 1, #KEYS do
  call(pexpire, KEYS[i], ttl)
end
return #KEYS
