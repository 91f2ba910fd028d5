-- Read KEYS[1], or claim the right to recompute it: the stampede lock KEYS[2] (SET NX PX).
-- KEYS[3] = the record of failed recomputations of KEYS[1] (a hash: n = how many, error =
-- the last one's type), written by stampede_release.lua.
-- ARGV[1] = the caller's token, ARGV[2] = the lock's lifetime in ms, ARGV[3] = the failure
-- count the caller saw on its previous look ('' on its first), ARGV[4] = the failures it
-- has seen since it began waiting.
-- Returns {1, value} when the value is there; otherwise {kind, n, seen} with kind 2 when
-- this caller now holds the lock, 0 when another caller holds it (wait, then ask again),
-- and {3, n, seen, error} when two recomputations failed while this caller waited: it
-- stops waiting (the first failure released every waiter to take the lock once more; the
-- second means the computation fails, so one more attempt per waiter would only queue).
local value = redis.call('GET', KEYS[1])
if value then
  return {1, value}
end
local n = tonumber(redis.call('HGET', KEYS[3], 'n')) or 0
local seen = 0
if ARGV[3] ~= '' then
  seen = tonumber(ARGV[4])
  local before = tonumber(ARGV[3])
  -- A count lower than before: the record expired; no failure is counted for that.
  if n > before then
    seen = seen + n - before
  end
end
if seen >= 2 then
  return {3, n, seen, redis.call('HGET', KEYS[3], 'error') or ''}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {2, n, seen}
end
return {0, n, seen}
