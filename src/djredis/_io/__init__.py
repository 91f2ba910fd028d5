"""Layer 3, I/O: RESP, the handshake, the blocking pool, the per-loop multiplexed
connection, and the redis-py clients handed to user code."""
