-- Write one session and keep its user's index in step, in one atomic step.
-- The session is a hash: d = data, c = created (ms), a = last write (ms), u = user id,
-- ip / ua = the client (when recorded). The index of user U is a sorted set at
-- ARGV[7] .. U: member = session key, score = expiry time (ms).
-- KEYS[1] the session; KEYS[2] the index of the user the session now holds (if any).
-- ARGV[1] 'create' (only if absent, as SET NX) or 'update' (only if present, as SET XX:
--         a session deleted meanwhile is never resurrected); ARGV[2] data;
--         ARGV[3] time to live in ms (<= 0: expired already); ARGV[4] now (ms);
--         ARGV[5] session key; ARGV[6] user id ('' = anonymous); ARGV[7] index key prefix;
--         ARGV[8] / ARGV[9] client IP / user agent (both '' = leave as they are).
-- Returns 1 when the precondition held, 0 when it did not (CreateError / UpdateError).
local key, index = KEYS[1], KEYS[2]
local mode, data, ttl, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local session_key, uid, index_prefix = ARGV[5], ARGV[6], ARGV[7]

local exists = redis.call('EXISTS', key) == 1
if exists == (mode == 'create') then
  return 0
end
local previous = exists and redis.call('HGET', key, 'u')
if previous and (previous ~= uid or ttl <= 0) then
  -- The session changed hands (or ends now): leave the previous user's index.
  redis.call('ZREM', index_prefix .. previous, session_key)
end
if ttl <= 0 then
  -- Django: an expiry in the past means the session is gone already.
  if exists then
    redis.call('DEL', key)
  end
  return 1
end

local fields = {'d', data, 'a', now}
if not exists then
  fields[#fields + 1] = 'c'
  fields[#fields + 1] = now
end
if uid ~= '' then
  fields[#fields + 1] = 'u'
  fields[#fields + 1] = uid
  if ARGV[8] ~= '' or ARGV[9] ~= '' then
    fields[#fields + 1] = 'ip'
    fields[#fields + 1] = ARGV[8]
    fields[#fields + 1] = 'ua'
    fields[#fields + 1] = ARGV[9]
  end
elseif previous then
  redis.call('HDEL', key, 'u', 'ip', 'ua')
end
redis.call('HSET', key, unpack(fields))
redis.call('PEXPIRE', key, ttl)

if uid ~= '' then
  redis.call('ZADD', index, now + ttl, session_key)
  -- Lazy pruning: entries whose session has expired go on every indexed write.
  redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. now)
  -- The index lives exactly as long as its longest-lived session.
  local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', index, last[2])
end
return 1
