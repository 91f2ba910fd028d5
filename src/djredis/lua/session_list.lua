-- List a user's live sessions, pruning index entries whose session is gone.
-- KEYS[1] the user's index. ARGV[1] now (ms); ARGV[2] session key prefix; ARGV[3] user id.
-- Returns one {session key, expires ms, created ms, last write ms, ip, user agent} per
-- session that still exists and still belongs to the user. Entries of sessions that
-- expired, were evicted, or now hold another user are removed from the index.
local index, prefix, uid = KEYS[1], ARGV[2], ARGV[3]
redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. ARGV[1])
local entries = redis.call('ZRANGE', index, 0, -1, 'WITHSCORES')
local result = {}
for i = 1, #entries, 2 do
  local session_key = entries[i]
  local meta = redis.pcall('HMGET', prefix .. session_key, 'u', 'c', 'a', 'ip', 'ua')
  if meta.err == nil and meta[1] == uid then
    result[#result + 1] = {session_key, entries[i + 1], meta[2], meta[3], meta[4], meta[5]}
  else
    redis.call('ZREM', index, session_key)
  end
end
return result
