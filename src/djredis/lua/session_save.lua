-- Write one session and, for a logged-in user, its entry in the user's index.
-- The session is a hash: d = data, c = created (ms), a = last write (ms), u = user id,
-- ip / ua = the client (when recorded). The index of a user is a sorted set: member =
-- session key, score = expiry time (ms). Times are this server's clock (session_time.lua).
-- KEYS are independent, each named by a role in the ARGV after the common ones: 'session'
-- (the session) or 'index' (the index of the user the session now holds). On one server
-- the script runs once with both; on Redis Cluster, once per slot with that slot's keys
-- (the session and the index hash to different slots), the calls sent together.
-- ARGV[1] 'create' (only if absent, as SET NX) or 'update' (only if present, as SET XX:
--         a session deleted meanwhile is never resurrected); ARGV[2] data;
--         ARGV[3] time to live in ms (<= 0: expired already);
--         ARGV[4] session key; ARGV[5] user id ('' = anonymous);
--         ARGV[6] / ARGV[7] client IP / user agent (both '' = leave as they are);
--         ARGV[7 + i] the role of KEYS[i].
-- Returns 1 when the session's precondition held, 0 when it did not (CreateError /
-- UpdateError), and 0 from a call without the session (the caller adds the replies).
-- An index entry whose session does not hold the user (a failed precondition on another
-- node, a later change of hands, a deletion) is dropped when the index is next read.
-- include: session_time
local mode, data, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local session_key, uid, ip, agent = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local session, index
for i, key in ipairs(KEYS) do
  if ARGV[7 + i] == 'session' then session = key else index = key end
end
local now = server_ms()

local function write(key)
  local exists = redis.call('EXISTS', key) == 1
  if exists == (mode == 'create') then
    return 0
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
    if ip ~= '' or agent ~= '' then
      fields[#fields + 1] = 'ip'
      fields[#fields + 1] = ip
      fields[#fields + 1] = 'ua'
      fields[#fields + 1] = agent
    end
  elseif exists then
    redis.call('HDEL', key, 'u', 'ip', 'ua')
  end
  redis.call('HSET', key, unpack(fields))
  redis.call('PEXPIRE', key, ttl)
  return 1
end

local function list(key)
  if ttl <= 0 then
    redis.call('ZREM', key, session_key)
  else
    redis.call('ZADD', key, now + ttl, session_key)
  end
  -- Lazy pruning, a bounded share per write: O(log n) however many entries there are.
  prune(key, now)
  -- The index lives exactly as long as its longest-lived session.
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIREAT', key, last[2])
  end
end

local written = 0
if session then
  written = write(session)
end
-- With both keys here, an index entry is only added for a session that was written.
if index and (written == 1 or not session) then
  list(index)
end
return written
