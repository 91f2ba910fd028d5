"""Django session engine on Redis: ``SESSION_ENGINE = "djredis.sessions"``.

One round trip per operation, counted in the tests: ``load`` is one ``HGET``, ``delete`` one
``DEL``, ``save`` and ``create`` one Lua script (on Redis Cluster, one per node involved,
sent together). ``save`` only updates a
session that still exists (a session deleted by a concurrent logout is never resurrected:
``UpdateError``), ``create`` only writes a key that does not exist yet (``CreateError``,
retried with a new key), both with the expiry in the same step. ``clear_expired()`` is a
no-op: Redis expires sessions itself. The ``a*`` twins run the same operations on the event
loop's multiplexed connection, without a thread.

Each session is a Redis hash ``<prefix>:<session key>``: ``d`` the data (encoded with
``SESSION_SERIALIZER``), ``c`` created and ``a`` last written (ms), and for a logged-in user
``u`` its id (plus ``ip``/``ua`` with ``record_client``). Sessions of logged-in users are
indexed per user (``<prefix>:user=<user id>``) by the same script, which is what
``user_sessions()``, ``revoke_session()`` and ``revoke_all_sessions()`` read.

A session key is only ever Django's alphabet (``[a-z0-9]``, 8 to 40 characters): any other
key, from a cookie or a caller, is a missing session, decided without asking Redis. So no
cookie names a key but its own session's record (never a user's index, whose keys hold
``=``).

When Redis is down or times out, ``load()`` raises (the request fails with the error in the
log) unless ``SESSION_REDIS['ignore_load_errors']`` is True: then the request sees an empty
session, a warning is logged, and the stored session is left as it was — the cookie is kept
and saving that request's session raises instead of overwriting it. ``save()``, ``create()``
and ``delete()`` always raise.

Settings: see ``djredis.sessions.config`` and docs/sessions.md.
"""

from djredis.sessions.store import (
    RevokeSessionsOnPasswordChange,
    SessionInfo,
    SessionStore,
    arevoke_all_sessions,
    arevoke_session,
    auser_sessions,
    revoke_all_sessions,
    revoke_session,
    session_id,
    user_sessions,
)

__all__ = [
    "RevokeSessionsOnPasswordChange",
    "SessionInfo",
    "SessionStore",
    "arevoke_all_sessions",
    "arevoke_session",
    "auser_sessions",
    "revoke_all_sessions",
    "revoke_session",
    "session_id",
    "user_sessions",
]
