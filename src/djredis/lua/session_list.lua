-- List a user's live sessions, one bounded chunk per call, pruning index entries whose
-- session is gone.
-- KEYS[1] the user's index. ARGV[1] session key prefix; ARGV[2] user id; ARGV[3] where to
-- start: '' for the first call (the server's now: expired entries are never read), else
-- the cursor the previous call returned.
-- Returns {cursor ('' = done), {session key, expires ms, created ms, last write ms, ip,
-- user agent}...} with one row per session that still exists and still belongs to the
-- user. Entries of sessions that expired, were evicted, or now hold another user are
-- removed from the index.
-- include: session_time
local index, prefix, uid, from = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
if from == '' then
  from = server_ms()
  prune(index, from)
end
local entries, cursor = chunk(index, from)
local result = {cursor}
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
