-- SET every KEYS[i] to ARGV[i + 1] with a TTL of ARGV[1] milliseconds: set_many() with a
-- timeout in one command (MSET cannot carry a TTL).
local ttl = ARGV[1]
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[i + 1], 'PX', ttl)
end
return #KEYS
