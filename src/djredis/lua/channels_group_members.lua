-- The first step of group_send where members may live elsewhere (several shards, Cluster):
-- drop expired memberships and return the members.
-- KEYS[1]: the group's sorted set; ARGV[1]: group_expiry in ms.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
return redis.call('ZRANGE', KEYS[1], 0, -1)
