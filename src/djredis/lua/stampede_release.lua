-- Release the stampede lock KEYS[1] if it still holds the caller's token ARGV[1] (the
-- recomputation failed; the next waiter claims the lock and tries).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
