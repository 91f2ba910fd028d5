-- GCRA (a token bucket kept as one number): LIMIT hits per PERIOD, one every PERIOD/LIMIT,
-- with up to BURST admitted at once. Constant memory: one string, the theoretical arrival
-- time of the next hit (µs).
-- KEYS[1]: that time. ARGV: limit, period (µs), hit (1/0), now (µs; '' = the server's
-- clock; tests pin it), burst (>= 1).
-- Returns {allowed, remaining, reset_after µs, retry_after µs, garbage}.
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local burst = tonumber(ARGV[5])
local now
if ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = period / limit
local tolerance = interval * burst
local garbage = 0
local kind = redis.call('TYPE', key)['ok']
local tat = nil
if kind == 'string' then
  tat = tonumber(redis.call('GET', key))
  if tat == nil then
    garbage = 1
  end
elseif kind ~= 'none' then
  redis.call('DEL', key)
  garbage = 1
end
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then
  -- denied: nothing changes
  return {0, 0, math.ceil(tat - now), math.ceil(allow_at - now), garbage}
end
if ARGV[3] == '1' then
  redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
  tat = new_tat
end
local remaining = math.floor((now + tolerance - tat) / interval + 1e-9)
return {1, remaining, math.ceil(tat - now), 0, garbage}
