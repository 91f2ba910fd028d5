-- Return a user's live index entries, one bounded chunk per call: {cursor ('' = done),
-- session key, expiry (ms), ...}. For Redis Cluster, where the sessions live in other slots
-- than the index: the caller reads them with commands of their own.
-- KEYS[1] the user's index. ARGV[1] where to start: '' for the first call (the server's
-- now: expired entries are never returned, and some are pruned), else the previous cursor.
-- include: session_time
local index, from = KEYS[1], ARGV[1]
if from == '' then
  from = server_ms()
  prune(index, from)
end
local entries, cursor = chunk(index, from)
table.insert(entries, 1, cursor)
return entries
