-- Revoke sessions of one user: delete them and their index entries, one bounded chunk of
-- the index per call.
-- KEYS[1] the user's index. ARGV[1] session key prefix; ARGV[2] user id; ARGV[3] mode:
--   'id'  revoke the session whose public id (first 16 hex digits of SHA1(session key))
--         is ARGV[4];
--   'all' revoke every session except the one whose key is ARGV[4] ('' = none kept);
-- ARGV[5] where to start: '' for the first call (the server's now), else the cursor the
-- previous call returned.
-- Only sessions that still hold this user are deleted. Returns {how many were deleted,
-- cursor ('' = done: the index is walked, or the session with that id was found)}.
-- include: session_time
local index, prefix, uid, mode, target = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local from = ARGV[5]
if from == '' then
  from = server_ms()
  prune(index, from)
end
local entries, cursor = chunk(index, from)
local revoked = 0
for i = 1, #entries, 2 do
  local session_key = entries[i]
  local hit
  if mode == 'id' then
    hit = string.sub(redis.sha1hex(session_key), 1, 16) == target
  else
    hit = session_key ~= target
  end
  if hit then
    local key = prefix .. session_key
    if redis.pcall('HGET', key, 'u') == uid then
      revoked = revoked + redis.call('DEL', key)
    end
    redis.call('ZREM', index, session_key)
    if mode == 'id' then
      cursor = ''
      break
    end
  end
end
return {revoked, cursor}
