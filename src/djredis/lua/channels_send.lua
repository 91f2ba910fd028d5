-- Send one message to one channel (RedisChannelLayer.send), unless the channel is full.
-- KEYS[1]: the channel's list "<prefix>:c:{<non-local name>}"
-- ARGV[1]: the serialized message; ARGV[2]: expiry in ms; ARGV[3]: the channel's
-- process-local part after "!" (or ""); ARGV[4]: its capacity.
-- The element is the one channels_deliver.lua writes ("<deadline ms>|<local part>|<message>",
-- deadline on the server's clock). The push comes first: RPUSH answers the new length, so the
-- common case costs no LLEN. Over capacity, the expired elements at the head are dropped
-- (they count for nothing) and, when the list is still too long, the push is taken back
-- before the script ends (a blocked reader never sees it: Redis serves blocked clients after
-- the script, and a full list has none). Below capacity the expired head stays for the
-- reader, which skips it.
-- Returns 1 when the message was enqueued, 0 when the channel is full.
-- include: channels_expired
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key, expiry, capacity = KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[4])
local length = redis.call('RPUSH', key, (now + expiry) .. '|' .. ARGV[3] .. '|' .. ARGV[1])
if length > capacity then
    drop_expired(key, now)
    if redis.call('LLEN', key) > capacity then
        redis.call('RPOP', key)
        return 0
    end
end
redis.call('PEXPIRE', key, 2 * expiry)
return 1
