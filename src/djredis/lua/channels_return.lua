-- Give back, at the head of a channel's list, messages a reader popped for receivers that
-- left (cancelled) before taking them, so they wait in Redis again, in their order, for any
-- worker of any process: a plain channel's messages never sit in a process's memory.
-- KEYS[1]: the channel's list; ARGV[1]: the list's lifetime (2 x expiry, ms);
-- ARGV[2...]: the elements as they were popped, oldest first (deadlines unchanged).
-- They were counted against capacity when sent, so capacity is not checked again.
for i = #ARGV, 2, -1 do
    redis.call('LPUSH', KEYS[1], ARGV[i])
end
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return #ARGV - 1
