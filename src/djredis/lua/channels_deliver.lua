-- Deliver one message to each channel in KEYS (one shard or slot's share of a group_send).
-- KEYS[i]: channel i's list "<prefix>:c:{<non-local name>}" (several channels may share one)
-- ARGV[1]: the serialized message; ARGV[2]: expiry in ms;
-- ARGV[1 + 2i]: channel i's process-local part after "!" (or ""); ARGV[2 + 2i]: its capacity.
-- An element is "<deadline ms>|<local parts, comma-separated>|<message>": the channels of one
-- list get ONE element, which the reader hands to each of them (a group's members in one
-- process cost one element of that process's capacity, as in channels_redis).
-- Deadlines are on the server's clock. Elements past their deadline are dropped from the
-- head first (they count for nothing). The list lives 2 x expiry after its last element
-- (past every deadline in it). A channel whose list holds its capacity already is skipped.
-- Returns the number of deliveries.
-- include: channels_expired
-- include: channels_lists
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local payload, expiry = ARGV[1], tonumber(ARGV[2])
local lists, order = {}, {}
for i, key in ipairs(KEYS) do by_list(lists, order, key, i) end
local delivered = 0
for _, key in ipairs(order) do
    drop_expired(key, now)
    local length = redis.call('LLEN', key)
    local parts = {}
    for _, i in ipairs(lists[key]) do
        if length < tonumber(ARGV[2 + 2 * i]) then parts[#parts + 1] = ARGV[1 + 2 * i] end
    end
    if #parts > 0 then
        redis.call('RPUSH', key, (now + expiry) .. '|' .. table.concat(parts, ',') .. '|' .. payload)
        redis.call('PEXPIRE', key, 2 * expiry)
        delivered = delivered + #parts
    end
end
return delivered
