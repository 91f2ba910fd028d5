-- Revoke sessions of one user: delete them and their index entries, in one atomic step.
-- KEYS[1] the user's index. ARGV[1] session key prefix; ARGV[2] user id; ARGV[3] mode:
--   'id'  revoke the session whose public id (first 16 hex digits of SHA1(session key))
--         is ARGV[4];
--   'all' revoke every session except the one whose key is ARGV[4] ('' = none kept).
-- Only sessions that still hold this user are deleted. Returns how many were deleted.
local index, prefix, uid, mode, target = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local revoked = 0
for _, session_key in ipairs(redis.call('ZRANGE', index, 0, -1)) do
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
  end
end
return revoked
