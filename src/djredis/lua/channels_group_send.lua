-- group_send on one server holding the group and every member channel (no Cluster, one
-- shard): the members are read, expired memberships dropped, and the message delivered in
-- this one script: ONE element per list for all the members that share it (the local
-- channels of one process; see channels_deliver.lua for the element format). Channels whose
-- messages expired unread leave the group.
-- KEYS[1]: the group's sorted set (member = channel name, score = last group_add, ms).
-- ARGV[1]: channel key prefix ("<prefix>:c:"); ARGV[2]: the serialized message;
-- ARGV[3]: expiry ms; ARGV[4]: group_expiry ms; ARGV[5]: capacity of every channel.
-- Returns the number of deliveries.
-- include: channels_expired
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local group = KEYS[1]
local prefix, payload = ARGV[1], ARGV[2]
local expiry, capacity = tonumber(ARGV[3]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', group, '-inf', now - tonumber(ARGV[4]))
local members = redis.call('ZRANGE', group, 0, -1)
local lists, order = {}, {}
for _, channel in ipairs(members) do
    local bang = string.find(channel, '!', 1, true)
    local non_local, local_part = channel, ''
    if bang then
        non_local, local_part = string.sub(channel, 1, bang), string.sub(channel, bang + 1)
    end
    local parts = lists[non_local]
    if not parts then
        parts = {}
        lists[non_local] = parts
        order[#order + 1] = non_local
    end
    parts[#parts + 1] = local_part
end
local delivered, expired = 0, {}
local function forget(name) expired[name] = true end
for _, non_local in ipairs(order) do
    local key = prefix .. '{' .. non_local .. '}'
    drop_expired(key, non_local, now, forget)
    if redis.call('LLEN', key) < capacity then
        local parts = lists[non_local]
        redis.call('RPUSH', key, (now + expiry) .. '|' .. table.concat(parts, ',') .. '|' .. payload)
        redis.call('PEXPIRE', key, 2 * expiry)
        delivered = delivered + #parts
    end
end
for _, channel in ipairs(members) do
    if expired[channel] then redis.call('ZREM', group, channel) end
end
return delivered
