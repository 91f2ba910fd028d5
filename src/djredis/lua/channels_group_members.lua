-- The first step of group_send where members may live elsewhere (several shards, Cluster):
-- drop expired memberships and return the members.
-- KEYS[1]: the group's sorted set; KEYS[2]: its list cache (voided when members expired);
-- ARGV[1]: group_expiry in ms.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1])) > 0 then
    redis.call('DEL', KEYS[2])
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
