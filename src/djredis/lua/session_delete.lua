-- Delete a session and its entry in its user's index, in one atomic step.
-- KEYS[1] the session. ARGV[1] index key prefix; ARGV[2] session key.
-- Returns 1 if the session existed, 0 if not.
local uid = redis.pcall('HGET', KEYS[1], 'u')
if type(uid) == 'string' then
  redis.call('ZREM', ARGV[1] .. uid, ARGV[2])
end
return redis.call('DEL', KEYS[1])
