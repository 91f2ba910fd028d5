-- Return a user's index entries, {session key, expiry (ms), ...}, after dropping the
-- expired ones. For Redis Cluster, where the sessions live in other slots than the index:
-- the caller reads them with commands of their own.
-- KEYS[1] the user's index. ARGV[1] now (ms).
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
