-- Exact sliding window: a hit is admitted when fewer than LIMIT hits were admitted in the
-- PERIOD before it, so no window of PERIOD ever holds more than LIMIT admitted hits.
-- KEYS[1]: a list of the admitted hits' times (µs), newest first, at most LIMIT long
-- (memory is bounded by the limit, whatever the traffic). Denied hits are not stored.
-- ARGV: limit, period (µs), hit (1 = count this hit, 0 = only look), now (µs; '' = the
-- server's clock; tests pin it), burst (unused).
-- Returns {allowed, remaining, reset_after µs, retry_after µs, garbage}.
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local now
if ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local garbage = 0
local kind = redis.call('TYPE', key)['ok']
if kind ~= 'list' and kind ~= 'none' then
  redis.call('DEL', key)
  garbage = 1
end
local n = redis.call('LLEN', key)
if n > limit then
  redis.call('LTRIM', key, 0, limit - 1)
  n = limit
  garbage = 1
end
-- A clock stepping back must not reorder the log: time never runs behind the newest hit.
if n > 0 then
  local newest = tonumber(redis.call('LINDEX', key, 0))
  if newest == nil then
    redis.call('DEL', key)
    n = 0
    garbage = 1
  elseif newest > now then
    now = newest
  end
end
-- Hits that left the window, oldest first; each is popped once, so this is O(1) amortised.
local cutoff = now - period
while n > 0 do
  local oldest = tonumber(redis.call('LINDEX', key, -1))
  if oldest ~= nil and oldest > cutoff then
    break
  end
  if oldest == nil then
    garbage = 1
  end
  redis.call('RPOP', key)
  n = n - 1
end
local allowed = 0
if n < limit then
  allowed = 1
  if ARGV[3] == '1' then
    redis.call('LPUSH', key, now)
    redis.call('PEXPIRE', key, math.ceil(period / 1000))
    n = n + 1
  end
end
local retry_after = 0
if allowed == 0 then
  retry_after = tonumber(redis.call('LINDEX', key, -1)) + period - now
end
local reset_after = 0
if n > 0 then
  reset_after = tonumber(redis.call('LINDEX', key, 0)) + period - now
end
return {allowed, limit - n, reset_after, retry_after, garbage}
