"""The near-cache: hot keys kept in the process, invalidated by Redis (``NEAR_CACHE``).

``options`` reads the setting, ``lru`` is the local tier, ``tracking`` follows a server's
invalidations on a dedicated connection, ``tier`` ties them together per process,
``reads`` and ``writes`` are what the cache backend calls. See docs/near-cache.md.
"""
