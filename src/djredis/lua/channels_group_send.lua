-- group_send on one server holding the group and every member channel (no Cluster, one
-- shard): the members are read, expired memberships dropped, and the message delivered in
-- this one script: ONE element per list for all the members that share it (the local
-- channels of one process; see channels_send.lua for the element format). Channels whose
-- messages expired unread leave the group.
-- KEYS[1]: the group's sorted set (member = channel name, score = last group_add, ms).
-- ARGV[1]: channel key prefix ("<prefix>:c:"); ARGV[2]: the serialized message;
-- ARGV[3]: expiry ms; ARGV[4]: group_expiry ms; ARGV[5]: capacity of every channel.
-- Returns the number of deliveries.
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
for _, non_local in ipairs(order) do
    local key = prefix .. '{' .. non_local .. '}'
    while true do
        local head = redis.call('LINDEX', key, 0)
        if not head then break end
        local bar = string.find(head, '|', 1, true)
        if tonumber(string.sub(head, 1, bar - 1)) > now then break end
        redis.call('LPOP', key)
        local parts = string.sub(head, bar + 1, string.find(head, '|', bar + 1, true) - 1)
        if parts == '' then expired[non_local] = true end
        for part in string.gmatch(parts, '[^,]+') do expired[non_local .. part] = true end
    end
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
