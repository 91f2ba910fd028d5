-- Included by channels_send.lua, channels_deliver.lua and channels_group_send.lua (their
-- "include" line).
-- drop_expired(key, non_local, now, forget): pop the elements at the head of list `key`
-- whose deadline is past (element format: see channels_deliver.lua) and call forget(name) for
-- every channel they were meant for, so the caller can drop those channels from groups.
-- A head that is not an element (garbage written by something else) stops the sweep: the
-- reader drops it with a log line, and the script goes on.
local function drop_expired(key, non_local, now, forget)
    while true do
        local head = redis.call('LINDEX', key, 0)
        if not head then break end
        local bar = string.find(head, '|', 1, true)
        local deadline = bar and tonumber(string.sub(head, 1, bar - 1))
        if not deadline or deadline > now or not string.find(head, '|', bar + 1, true) then
            break
        end
        redis.call('LPOP', key)
        local parts = string.sub(head, bar + 1, string.find(head, '|', bar + 1, true) - 1)
        if parts == '' then forget(non_local) end
        for part in string.gmatch(parts, '[^,]+') do forget(non_local .. part) end
    end
end
