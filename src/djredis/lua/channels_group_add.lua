-- group_add: the membership's score is now (server clock, ms); the group lives
-- group_expiry after its last group_add. A new member voids the group's list cache (see
-- channels_group_send.lua); a refreshed one leaves it.
-- KEYS[1]: the group's sorted set; KEYS[2]: its list cache;
-- ARGV[1]: channel name; ARGV[2]: group_expiry in ms.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZADD', KEYS[1], now, ARGV[1]) > 0 then redis.call('DEL', KEYS[2]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
