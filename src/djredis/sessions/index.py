"""The per-user session index: list and revoke one user's sessions.

Every write of a session that holds an authenticated user (``_auth_user_id``) also records
it in that user's index, by the same Lua script (``lua/session_save.lua``): a sorted set
``<prefix>:user=<user id>`` whose members are session keys scored by their expiry time.
A session that exists is always listed. Entries are pruned lazily: expired ones on the
next indexed write or listing; entries whose session is gone for another reason (deleted,
evicted by ``maxmemory``, now holding another user) when the index is next listed or
revoked from.

On one server, listing and revoking are one script each, which reads the sessions too. On
Redis Cluster the sessions hash to other slots than their index, so both take steps: read
the index, then read (or revoke) its sessions with commands of their own, sent together.

A session is named outside the store by its *id*: the first 16 hex digits of the SHA-1 of
its key. The key itself is a bearer credential and never leaves the server.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from django.conf import settings
from django.utils import timezone as django_timezone

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


def now_ms() -> int:
    """Return the current time in ms since the epoch (scores and timestamps in Redis)."""
    return time.time_ns() // 1_000_000


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
    """List the user's live sessions (pruning dead entries), oldest expiry first."""
    index = conf.index_key_prefix() + uid
    if conf.cluster:
        rows = yield from _cluster_rows(conf, index, uid)
    else:
        rows = yield Eval(lua("session_list"), (index,), (now_ms(), conf.session_key_prefix(), uid))
    sessions = []
    for raw_key, expires, created, last, ip, agent in rows:
        key = _key(raw_key)
        sessions.append(
            SessionInfo(
                id=session_id(key),
                created=_datetime(created or last or 0),
                last_activity=_datetime(last or created or 0),
                expires=_datetime(float(expires)),
                ip=_text(ip),
                user_agent=_text(agent),
                current=key == current_session_key,
            )
        )
    return sessions


def op_revoke(conf: SessionSettings, uid: str, mode: str, target: str) -> Operation[int]:
    """Delete the user's session with id ``target`` (mode "id"), or all sessions but the
    one with key ``target`` (mode "all"); return how many were deleted."""
    index = conf.index_key_prefix() + uid
    if not conf.cluster:
        revoked = yield Eval(
            lua("session_revoke"), (index,), (conf.session_key_prefix(), uid, mode, target)
        )
        return int(revoked)
    entries = yield from _index_entries(index)
    keys = [
        key for key, _ in entries if (session_id(key) == target if mode == "id" else key != target)
    ]
    if not keys:
        return 0
    prefix = conf.session_key_prefix()
    revoked = yield Eval(
        lua("session_revoke_keys"),
        (*(prefix + key for key in keys), index),
        (uid,),
        per_key=(*("session" for _ in keys), " ".join(keys)),
    )
    return int(revoked)


def _key(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _index_entries(index: str) -> Operation[list[tuple[str, Any]]]:
    """Return the (session key, expiry ms) entries of an index, the expired ones dropped."""
    flat = yield Eval(lua("session_index"), (index,), (now_ms(),))
    return [(_key(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]


def _cluster_rows(conf: SessionSettings, index: str, uid: str) -> Operation[list[Any]]:
    """Return ``session_list.lua``'s rows on Redis Cluster, in three steps at most."""
    entries = yield from _index_entries(index)
    if not entries:
        return []
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
    return rows
