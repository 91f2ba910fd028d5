-- Deliver one message to each channel in KEYS (a send, or one slot's share of a group_send).
-- KEYS[i]: a channel's list "<prefix>:c:{<non-local name>}"
-- ARGV[1]: the serialized message; ARGV[2]: expiry in ms;
-- ARGV[1 + 2i]: channel i's process-local part after "!" (or ""); ARGV[2 + 2i]: its capacity.
-- Each element is "<deadline ms>|<local part>|<message>", deadline on the server's clock.
-- Messages past their deadline are dropped from the head first (they count for nothing).
-- The list lives 2 x expiry after its last message, so a channel whose messages expired
-- unread is still seen as such by the next group_send for a while.
-- Returns {delivered, <names of channels that had messages expire unread>...}; a full
-- channel is skipped (send turns delivered == 0 into ChannelFull).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local payload, expiry = ARGV[1], tonumber(ARGV[2])
local delivered, expired, seen = 0, {}, {}
for i, key in ipairs(KEYS) do
    while true do
        local head = redis.call('LINDEX', key, 0)
        if not head then break end
        local bar = string.find(head, '|', 1, true)
        if tonumber(string.sub(head, 1, bar - 1)) > now then break end
        redis.call('LPOP', key)
        local local_part = string.sub(head, bar + 1, string.find(head, '|', bar + 1, true) - 1)
        local name = string.match(key, '{(.*)}') .. local_part
        if not seen[name] then
            seen[name] = true
            expired[#expired + 1] = name
        end
    end
    if redis.call('LLEN', key) < tonumber(ARGV[2 + 2 * i]) then
        redis.call('RPUSH', key, (now + expiry) .. '|' .. ARGV[1 + 2 * i] .. '|' .. payload)
        redis.call('PEXPIRE', key, 2 * expiry)
        delivered = delivered + 1
    end
end
local result = {delivered}
for _, name in ipairs(expired) do result[#result + 1] = name end
return result
