-- Fixed window: INCR + PEXPIRE made atomic. The first hit opens a window of PERIOD; every
-- hit in it (denied ones too) counts, and LIMIT are admitted. Up to 2 x LIMIT hits can
-- pass within one PERIOD around the window's edge: use 'sliding' when that matters.
-- KEYS[1]: the counter. ARGV: limit, period (µs), hit (1/0), now (unused: the window is
-- the key's TTL, kept by the server's clock), burst (unused).
-- Returns {allowed, remaining, reset_after µs, retry_after µs, garbage}.
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local period_ms = math.ceil(tonumber(ARGV[2]) / 1000)
local garbage = 0
local kind = redis.call('TYPE', key)['ok']
if kind ~= 'string' and kind ~= 'none' then
  redis.call('DEL', key)
  garbage = 1
end
local count
if ARGV[3] == '1' then
  count = redis.pcall('INCR', key)
  if type(count) == 'table' then
    redis.call('DEL', key)
    garbage = 1
    count = redis.call('INCR', key)
  end
else
  count = tonumber(redis.call('GET', key) or '0')
  if count == nil then
    redis.call('DEL', key)
    garbage = 1
    count = 0
  end
end
local ttl = redis.call('PTTL', key)
if count > 0 and ttl < 0 then
  -- a new window (or a counter that somehow lost its TTL): it ends one PERIOD from now
  redis.call('PEXPIRE', key, period_ms)
  ttl = period_ms
end
if ttl < 0 then
  ttl = 0
end
local allowed = 1
local used = count
if ARGV[3] == '1' then
  if count > limit then
    allowed = 0
  end
elseif count >= limit then
  allowed = 0
end
local remaining = limit - used
if remaining < 0 then
  remaining = 0
end
local retry_after = 0
if allowed == 0 then
  retry_after = ttl * 1000
end
return {allowed, remaining, ttl * 1000, retry_after, garbage}
