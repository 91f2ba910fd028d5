-- Add ARGV[1] to the integer at KEYS[1], atomically, keeping its TTL (INCRBY does).
-- Returns nil when the key does not exist (Django's incr raises ValueError then).
-- When the stored value is not a raw integer (a pickled float, a big int, a string...),
-- nothing is written and the raw value comes back in a one-element table, so the caller can
-- decode it, add in Python and write it back with cas_set.lua.
local raw = redis.call('GET', KEYS[1])
if not raw then
  return false
end
local result = redis.pcall('INCRBY', KEYS[1], ARGV[1])
if type(result) == 'table' and result.err then
  return {raw}
end
return result
