-- Revoke the given sessions of one user, and drop them from the user's index.
-- For Redis Cluster, where a session and the index hash to different slots: KEYS are
-- independent, each named by a role in the ARGV after ARGV[1]: 'session' (a session to
-- delete if it still holds the user) or, for the index, the session keys to remove from
-- it, separated by spaces. djredis runs the script once per slot with that slot's keys.
-- ARGV[1] user id. Returns how many sessions were deleted.
local uid = ARGV[1]
local revoked = 0
for i, key in ipairs(KEYS) do
  local role = ARGV[1 + i]
  if role == 'session' then
    if redis.pcall('HGET', key, 'u') == uid then
      revoked = revoked + redis.call('DEL', key)
    end
  else
    for session_key in string.gmatch(role, '%S+') do
      redis.call('ZREM', key, session_key)
    end
  end
end
return revoked
