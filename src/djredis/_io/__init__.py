"""Layer 3, I/O: RESP, the socket-free protocol core (``protocol``), the blocking shell
(``blocking``, ``pool``), the asyncio shell, and the redis-py clients handed to user code."""
