-- Compare-and-set: replace KEYS[1] with ARGV[2] only if it still holds ARGV[1], keeping
-- its TTL (SET ... KEEPTTL). Returns 1 when written, 0 when another client changed or
-- deleted the key meanwhile (the caller re-reads and tries again).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
