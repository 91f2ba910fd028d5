-- Release the stampede lock KEYS[1] if it still holds the caller's token ARGV[1]; when the
-- recomputation failed (ARGV[2] = its error's type, '' for a cancelled caller), count the
-- failure in KEYS[2] for ARGV[3] ms, so that the callers waiting for it stop waiting
-- (stampede_claim.lua) instead of taking the lock one after another.
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  released = redis.call('DEL', KEYS[1])
end
if ARGV[2] ~= '' then
  redis.call('HINCRBY', KEYS[2], 'n', 1)
  redis.call('HSET', KEYS[2], 'error', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return released
