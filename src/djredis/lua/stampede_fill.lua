-- Store a recomputed value and release the stampede lock, in one round trip.
-- KEYS[1] = the value's key, KEYS[2] = the lock; ARGV[1] = the value, ARGV[2] = its TTL
-- in ms (0: no expiry), ARGV[3] = the token the lock was taken with. The lock is deleted
-- only if it still holds that token: a lock that expired and was taken by another caller
-- is not ours to release.
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
if redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('DEL', KEYS[2])
end
return 1
