-- group_send on one server holding the group and every member channel (no Cluster, one
-- shard): expired memberships are dropped and the message delivered in this one script: ONE
-- element per list for all the members that share it (the local channels of one process;
-- see channels_deliver.lua for the element format). Members stay members until
-- group_discard or group_expiry, whether or not they read their messages.
-- The members' lists come from the group's list cache, a hash: field = a list's non-local
-- name, value = "<count>|<the members' local parts, comma-separated>", built from the
-- sorted set when missing. Every change of membership voids it (channels_group_add.lua for
-- a new member, channels_group_remove.lua, channels_group_members.lua, this script), and it
-- expires with the group (its TTL is copied from the group's when it is built; group_add
-- only ever lengthens the group's), so it never names a channel that is not a member. With
-- it, Redis spends 38-75 us on a group_send to 100 local channels instead of 135-158 us.
-- KEYS[1]: the group's sorted set (member = channel name, score = last group_add, ms);
-- KEYS[2]: the group's list cache.
-- ARGV[1]: channel key prefix ("<prefix>:c:"); ARGV[2]: the serialized message;
-- ARGV[3]: expiry ms; ARGV[4]: group_expiry ms; ARGV[5]: capacity of every channel.
-- Returns the number of deliveries.
-- include: channels_expired
-- include: channels_lists
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local group, cache = KEYS[1], KEYS[2]
local prefix, payload = ARGV[1], ARGV[2]
local expiry, capacity = tonumber(ARGV[3]), tonumber(ARGV[5])
if redis.call('ZREMRANGEBYSCORE', group, '-inf', now - tonumber(ARGV[4])) > 0 then
    redis.call('DEL', cache)
end
local lists = redis.call('HGETALL', cache)
for i = 2, #lists, 2 do
    if not string.match(lists[i], '^%d+|') then -- garbage: rebuilt from the sorted set
        redis.call('DEL', cache)
        lists = {}
        break
    end
end
if #lists == 0 then
    local members = redis.call('ZRANGE', group, 0, -1)
    if #members == 0 then return 0 end
    local parts, order = {}, {}
    for _, channel in ipairs(members) do
        local bang = string.find(channel, '!', 1, true)
        if bang then
            by_list(parts, order, string.sub(channel, 1, bang), string.sub(channel, bang + 1))
        else
            by_list(parts, order, channel, '')
        end
    end
    for _, non_local in ipairs(order) do
        local list = parts[non_local]
        local value = #list .. '|' .. table.concat(list, ',')
        redis.call('HSET', cache, non_local, value)
        lists[#lists + 1] = non_local
        lists[#lists + 1] = value
    end
    local ttl = redis.call('PTTL', group)
    if ttl > 0 then redis.call('PEXPIRE', cache, ttl) end
end
local delivered = 0
for i = 1, #lists, 2 do
    local non_local, value = lists[i], lists[i + 1]
    local key = prefix .. '{' .. non_local .. '}'
    drop_expired(key, now)
    if redis.call('LLEN', key) < capacity then
        local bar = string.find(value, '|', 1, true)
        redis.call('RPUSH', key, (now + expiry) .. '|' .. string.sub(value, bar + 1) .. '|' .. payload)
        redis.call('PEXPIRE', key, 2 * expiry)
        delivered = delivered + tonumber(string.sub(value, 1, bar - 1))
    end
end
return delivered
