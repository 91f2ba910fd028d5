"""The per-user session index: list and revoke one user's sessions.

Every write of a session that holds an authenticated user (``_auth_user_id``) also records
it in that user's index, by the same Lua script (``lua/session_save.lua``): a sorted set
``<prefix>:user=<user id>`` whose members are session keys scored by their expiry time.
A session that exists is always listed. Entries are pruned lazily: expired ones on the
next indexed write or listing (a bounded number per call); entries whose session is gone
for another reason (deleted, evicted by ``maxmemory``, now holding another user) when the
index is next listed or revoked from.

Every time involved (the scores, ``created``/``last_activity``, what "expired" means) is
the Redis server's clock (``TIME`` in the scripts), never this process's: an application
server whose clock is off lists and revokes exactly what the others do.

No call costs Redis time in proportion to the user's number of sessions: a write is
O(log n); listing and revoking walk the index in chunks of a bounded size, one script call
per chunk (one call in all for a user with fewer sessions than a chunk), the cursor being an
expiry score. On one server each chunk's script reads the sessions too. On Redis Cluster
the sessions hash to other slots than their index, so each chunk takes steps: read the
index, then read (or revoke) its sessions with commands of their own, sent together.

A session is named outside the store by its *id*: the first 16 hex digits of the SHA-1 of
its key. The key itself is a bearer credential and never leaves the server.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from django.conf import settings
from django.utils import timezone as django_timezone

from djredis._core import observe
from djredis._core.commands import Batch, Call, Eval, Operation
from djredis._core.scripts import lua
from djredis.sessions.config import SessionSettings

__all__ = ["SessionInfo", "op_list", "op_revoke", "session_id", "user_id"]


@dataclass(frozen=True)
class SessionInfo:
    """One live session of a user, as ``user_sessions()`` lists it."""

    id: str
    """Public id of the session (not its key): pass it to ``revoke_session()``."""
    created: datetime
    """When this session key was created (for a logged-in user: the login)."""
    last_activity: datetime
    """When the session was last written (a request that modified or saved it)."""
    expires: datetime
    """When Redis will expire it unless it is written again."""
    ip: str | None
    """The client's address at the last write, with ``record_client`` on (else None)."""
    user_agent: str | None
    """The client's User-Agent at the last write, with ``record_client`` on (else None)."""
    current: bool
    """Whether this is the session whose key was passed as ``current_session_key``."""


def session_id(session_key: str) -> str:
    """Return the public id of a session: 16 hex digits of SHA-1 of its key."""
    return hashlib.sha1(session_key.encode()).hexdigest()[:16]


def user_id(user: Any) -> str:
    """Return the id the session stores for ``user`` (a user object or a primary key)."""
    meta = getattr(user, "_meta", None)
    if meta is not None:
        if user.pk is None:
            raise ValueError(f"{user!r} has no primary key yet; save it first.")
        value: str = meta.pk.value_to_string(user)
        return value
    return str(user)


def _datetime(ms: Any) -> datetime:
    moment = datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc)
    return moment if settings.USE_TZ else django_timezone.make_naive(moment)


def _text(raw: Any) -> str | None:
    if raw is None or raw == b"":
        return None
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def op_list(
    conf: SessionSettings, uid: str, current_session_key: str | None
) -> Operation[list[SessionInfo]]:
    """List the user's live sessions (pruning dead entries), soonest expiry first."""
    index = conf.index_key_prefix() + uid
    rows: list[Any] = []
    cursor: Any = ""
    while True:
        if conf.cluster:
            cursor, chunk = yield from _cluster_rows(conf, index, uid, cursor)
        else:
            reply = yield Eval(
                lua("session_list"), (index,), (conf.session_key_prefix(), uid, cursor)
            )
            cursor, chunk = reply[0], reply[1:]
        rows.extend(chunk)
        if not cursor:
            break
    sessions = []
    for raw_key, expires, created, last, ip, agent in rows:
        key = _key(raw_key)
        try:
            times = (
                _datetime(created or last or 0),
                _datetime(last or created or 0),
                _datetime(float(expires)),
            )
        except (ValueError, OverflowError, OSError) as exc:
            # Bytes read from Redis are untrusted: a time no djredis write produces (an
            # index edited by hand, '+inf') leaves that row out instead of failing the list.
            conf.garbage.log(
                logging.WARNING,
                "djredis: session %s of user %r has unreadable times in Redis (%s); not listed",
                session_id(key),
                uid,
                exc,
            )
            continue
        sessions.append(
            SessionInfo(
                id=session_id(key),
                created=times[0],
                last_activity=times[1],
                expires=times[2],
                ip=_text(ip),
                user_agent=_text(agent),
                current=key == current_session_key,
            )
        )
    return sessions


def op_revoke(conf: SessionSettings, uid: str, mode: str, target: str) -> Operation[int]:
    """Delete the user's session with id ``target`` (mode "id"), or all sessions but the
    one with key ``target`` (mode "all"); return how many were deleted.

    The index is walked in chunks; a session created while the walk goes on is revoked
    too when its entry comes after the cursor (sessions of the same lifetime are scored in
    the order they are written).
    """
    index = conf.index_key_prefix() + uid
    prefix = conf.session_key_prefix()
    revoked = 0
    cursor: Any = ""
    while True:
        if conf.cluster:
            deleted, cursor = yield from _cluster_revoke(prefix, index, uid, mode, target, cursor)
        else:
            deleted, cursor = yield Eval(
                lua("session_revoke"), (index,), (prefix, uid, mode, target, cursor)
            )
        revoked += int(deleted)
        if not cursor:
            if revoked and observe.hooks is not None:
                observe.session_event("revoked", revoked)
            return revoked


def _key(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _index_entries(index: str, cursor: Any) -> Operation[tuple[Any, list[tuple[str, Any]]]]:
    """Return the next cursor and chunk of live (session key, expiry ms) index entries."""
    flat = yield Eval(lua("session_index"), (index,), (cursor,))
    entries = [(_key(flat[i]), flat[i + 1]) for i in range(1, len(flat), 2)]
    return flat[0], entries


def _cluster_rows(
    conf: SessionSettings, index: str, uid: str, cursor: Any
) -> Operation[tuple[Any, list[Any]]]:
    """Return the next cursor and ``session_list.lua``'s rows for one chunk of the index,
    on Redis Cluster: three steps at most."""
    cursor, entries = yield from _index_entries(index, cursor)
    if not entries:
        return cursor, []
    prefix = conf.session_key_prefix()
    metas = yield Batch(
        tuple(("HMGET", prefix + key, "u", "c", "a", "ip", "ua") for key, _ in entries)
    )
    rows: list[Any] = []
    gone: list[str] = []
    for (key, expires), (owner, created, last, ip, agent) in zip(entries, metas, strict=True):
        if _text(owner) == uid:
            rows.append((key, expires, created, last, ip, agent))
        else:
            gone.append(key)
    if gone:
        yield Call(("ZREM", index, *gone))
    return cursor, rows


def _cluster_revoke(
    prefix: str, index: str, uid: str, mode: str, target: str, cursor: Any
) -> Operation[tuple[int, Any]]:
    """Revoke the matching sessions of one chunk of the index, on Redis Cluster; return
    how many were deleted and the next cursor ("" once done)."""
    cursor, entries = yield from _index_entries(index, cursor)
    if mode == "id":
        keys = [key for key, _ in entries if session_id(key) == target][:1]
        if keys:
            cursor = ""
    else:
        keys = [key for key, _ in entries if key != target]
    if not keys:
        return 0, cursor
    revoked = yield Eval(
        lua("session_revoke_keys"),
        (*(prefix + key for key in keys), index),
        (uid,),
        per_key=(*("session" for _ in keys), " ".join(keys)),
    )
    return int(revoked), cursor
