-- Read KEYS[1], or claim the right to recompute it: the stampede lock KEYS[2] (SET NX PX).
-- ARGV[1] = the caller's token, ARGV[2] = the lock's lifetime in ms.
-- Returns {1, value} when the value is there, {2} when this caller now holds the lock,
-- {0} when another caller holds it (wait, then ask again).
local value = redis.call('GET', KEYS[1])
if value then
  return {1, value}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {2}
end
return {0}
