"""Every exception djredis raises, in one place to import them from.

djredis's connections raise redis-py's exception classes, so code written against
django-redis or redis-py (``except redis.exceptions.ConnectionError``) keeps working; they
are re-exported here beside djredis's own, each a subclass of the redis-py class (or of the
Python built-in) code already catches::

    from djredis.exceptions import ConnectionError, CommandNotSent, RecomputeError

- ``CommandNotSent``: the command never left this process (nothing ran on the server), so
  it is always safe to send again; a ``ConnectionError``.
- ``MaxClientsReached``: the server refused a new connection at ``maxclients`` (nothing
  ran); a ``CommandNotSent`` and redis-py's ``MaxClientsReachedError``.
- ``ProtocolError``: the server's bytes broke the RESP protocol (not Redis, or a proxy
  gone wrong); the connection was dropped; a ``ConnectionError``.
- ``TopologyError``: a server no longer plays the role it was addressed in (a demoted
  primary, a Cluster slot in migration); a ``ConnectionError``, so ``IGNORE_EXCEPTIONS``
  turns it into a miss.
- ``CrossSlotError``: a multi-key set command (``sinter``...) named keys in different
  Redis Cluster hash slots; a ``ValueError``.
- ``RecomputeError``: the callers that waited for a value whose computation failed twice
  elsewhere (``get_or_set(..., stampede=...)``, ``memoize``).
- ``UnserializableValue``: a value the configured serializer cannot encode; a
  ``TypeError`` naming its type.
"""

from __future__ import annotations

from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ConnectionError,
    DataError,
    LockError,
    LockNotOwnedError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TimeoutError,
)

from djredis._core.errors import (
    CommandNotSent,
    MaxClientsReached,
    MaxClientsReachedError,
    ProtocolError,
)
from djredis._routing.base import TopologyError
from djredis.cache.codec import UnserializableValue
from djredis.cache.members import CrossSlotError
from djredis.cache.stampede import RecomputeError

__all__ = [
    "AuthenticationError",
    "BusyLoadingError",
    "CommandNotSent",
    "ConnectionError",
    "CrossSlotError",
    "DataError",
    "LockError",
    "LockNotOwnedError",
    "MaxClientsReached",
    "MaxClientsReachedError",
    "NoScriptError",
    "ProtocolError",
    "ReadOnlyError",
    "RecomputeError",
    "RedisError",
    "ResponseError",
    "TimeoutError",
    "TopologyError",
    "UnserializableValue",
]
