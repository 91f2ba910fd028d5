-- Included by channels_send.lua, channels_deliver.lua and channels_group_send.lua (their
-- "include" line).
-- drop_expired(key, now): pop the elements at the head of list `key` whose deadline is past
-- (element format: see channels_deliver.lua), so they count for nothing against capacity.
-- Group membership is not touched: like channels_redis, a channel leaves a group only by
-- group_discard or when group_expiry passes, never because one message expired unread.
-- A head that is not an element (garbage written by something else) stops the sweep: the
-- reader drops it with a log line, and the script goes on.
local function drop_expired(key, now)
    while true do
        local head = redis.call('LINDEX', key, 0)
        if not head then break end
        local bar = string.find(head, '|', 1, true)
        local deadline = bar and tonumber(string.sub(head, 1, bar - 1))
        if not deadline or deadline > now or not string.find(head, '|', bar + 1, true) then
            break
        end
        redis.call('LPOP', key)
    end
end
