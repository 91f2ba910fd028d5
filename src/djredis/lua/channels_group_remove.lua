-- group_discard: ZREM the channels, and void the group's list cache (see
-- channels_group_send.lua) when one of them was a member.
-- KEYS[1]: the group's sorted set; KEYS[2]: its list cache; ARGV: the channel names.
-- Returns how many were members.
local removed = 0
for i = 1, #ARGV, 1000 do
    removed = removed + redis.call('ZREM', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if removed > 0 then redis.call('DEL', KEYS[2]) end
return removed
