-- Shared by the session scripts (included): the server's clock, and walks over a user's
-- index whose cost per call is bounded whatever the number of entries.
-- Every time in the session records and the index scores is this server's TIME, never an
-- application server's clock: a client whose clock is off neither hides live sessions
-- (scoring or pruning with a time ahead) nor lists expired ones (a time behind).
-- Calling TIME before writing is allowed with script effects replication (the default from
-- Redis 5; the only mode in Redis 7 and Valkey).

-- Expired index entries dropped per call at most: each write adds one entry at most, so the
-- backlog still drains, at O(log n + PRUNE) per call instead of O(expired).
local PRUNE = 100
-- Index entries read per call at most by listing and revoking: a user with 50 000
-- sessions (an attacker logging in in a loop) costs many short calls, never one long one.
local CHUNK = 100

local function server_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- Drop up to PRUNE of the entries expired before `now` (they have the lowest scores).
local function prune(index, now)
  local expired = redis.call('ZCOUNT', index, '-inf', '(' .. now)
  if expired > 0 then
    redis.call('ZREMRANGEBYRANK', index, 0, math.min(expired, PRUNE) - 1)
  end
end

-- Return the next entries of an index, {member, score, ...} in score order from the score
-- `from` on (inclusive; '(' before it: exclusive), about CHUNK of them, and where the next
-- call starts ('' when none are left). The cursor is a score, so entries added or removed
-- meanwhile never shift it: every entry present during the whole walk is visited once.
local function chunk(index, from)
  local entries = redis.call('ZRANGEBYSCORE', index, from, '+inf', 'WITHSCORES', 'LIMIT', 0, CHUNK)
  if #entries < 2 * CHUNK then
    return entries, ''
  end
  -- Entries tied with the last score may go on past the limit: leave them all to the next
  -- call, which starts at that score.
  local last = entries[#entries]
  local cut = #entries
  while cut > 0 and entries[cut] == last do
    cut = cut - 2
  end
  if cut > 0 then
    local kept = {}
    for i = 1, cut do
      kept[i] = entries[i]
    end
    return kept, last
  end
  -- CHUNK entries or more expire in the same millisecond: take them all in this call.
  return redis.call('ZRANGEBYSCORE', index, last, last, 'WITHSCORES'), '(' .. last
end
