"""The session store behind ``SESSION_ENGINE = "djredis.sessions"`` (see the package)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeGuard

from django.contrib.sessions.backends.base import (
    VALID_KEY_CHARS,
    CreateError,
    SessionBase,
    UpdateError,
)
from django.core.signals import setting_changed
from django.utils.crypto import get_random_string
from django.utils.translation import gettext as _
from redis.exceptions import ResponseError

from djredis._core import observe
from djredis._core.commands import Call, Eval, Operation
from djredis._core.errors import CONNECTION_ERRORS, ErrorPolicy
from djredis._core.scripts import lua
from djredis._routing.base import run_async, run_sync
from djredis.sessions.config import SessionSettings, read_session_settings
from djredis.sessions.index import SessionInfo, op_list, op_revoke, session_id, user_id

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

logger = logging.getLogger("djredis.sessions")

# django.contrib.auth.SESSION_KEY, spelled out so importing the engine needs no app registry.
AUTH_USER_KEY = "_auth_user_id"
SESSION_KEY_LENGTH = 32
# What a session key may be: Django's alphabet; at least Django's minimum length
# (SessionBase._validate_session_key), at most the longest key Django stores (the database
# engine's session_key column).
_SESSION_KEY = re.compile(f"[{re.escape(VALID_KEY_CHARS)}]{{8,40}}")
# A collision among 36**32 keys is a broken random generator, not bad luck; Django's cache
# engine gives up after 10000 tries for the same reason.
CREATE_ATTEMPTS = 100

# Session operations never turn errors into fallbacks through the policy: load() decides
# itself (ignore_load_errors), and every write raises.
_STRICT = ErrorPolicy(ignore=False, logger=logger, where="SESSION_ENGINE 'djredis.sessions'")

_settings: SessionSettings | None = None


def _current_settings() -> SessionSettings:
    """Return the engine's settings, read once (again after a settings change in tests)."""
    global _settings
    if _settings is None:
        _settings = read_session_settings()
    return _settings


def _forget_settings(*, setting: str, **kwargs: Any) -> None:
    global _settings
    if setting.startswith("SESSION_REDIS") or setting == "CACHES":
        _settings = None


setting_changed.connect(_forget_settings, dispatch_uid="djredis.sessions.settings")


def is_session_key(key: Any) -> TypeGuard[str]:
    """Return whether ``key`` can be a session key (else it names no session)."""
    return isinstance(key, str) and _SESSION_KEY.fullmatch(key) is not None


class SessionStore(SessionBase):
    """A Django session kept in Redis, written atomically in one round trip."""

    _session_cache: dict[str, Any]

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._conf = _current_settings()
        self._load_error: Exception | None = None
        self.client: tuple[str, str] | None = None
        """(IP, User-Agent) of the request; set by ``djredis.middleware.SessionMiddleware``."""
        # Under ASGI the middleware runs Django's process_response with saves deferred
        # (None: save() writes; False/True: a save(must_create=...) awaits _asave_later()).
        self._defer_saves = False
        self._deferred: bool | None = None
        # The user the stored session was read or last written with: a save under another
        # one is a login (djredis.metrics counts them).
        self._stored_uid = ""

    # -- keys and encoding ------------------------------------------------------------------

    def _validate_session_key(self, key: Any) -> bool:
        """Accept only keys of Django's alphabet; any other key is no session at all.

        ``SessionBase`` calls this whenever a key is set (from the cookie too) and keeps
        None instead of an invalid key, so a forged cookie never reaches Redis.
        """
        return is_session_key(key)

    def _redis_key(self, session_key: str) -> str:
        if not is_session_key(session_key):  # the one place a session key becomes a Redis key
            raise ValueError(f"{session_key!r} is not a session key")
        return self._conf.session_key_prefix() + session_key

    def _get_new_session_key(self) -> str:
        # No EXISTS round trip: create() writes with NX and retries on a collision.
        return get_random_string(SESSION_KEY_LENGTH, VALID_KEY_CHARS)

    async def _aget_new_session_key(self) -> str:
        return self._get_new_session_key()

    def _decoded(self, raw: bytes | None) -> dict[str, Any]:
        """Return the session data read by load(); a missing session drops the key."""
        if raw is not None:
            try:
                data = self.serializer().loads(raw)
                if isinstance(data, dict):
                    uid = data.get(AUTH_USER_KEY)
                    self._stored_uid = "" if uid is None else str(uid)
                    return data
                # Bytes from Redis are untrusted: JSON that is not an object is no session.
                raise TypeError(f"the data is a {type(data).__name__}, not a dict")
            except Exception as exc:  # whatever the serializer raises on foreign data
                self._conf.garbage.log(
                    logging.WARNING,
                    "djredis: session data in Redis cannot be decoded with %s (%s: %s); "
                    "the request gets a new, empty session",
                    self.serializer.__qualname__,
                    type(exc).__name__,
                    exc,
                )
        # As Django's engines do: an unknown key is never reused (session fixation).
        self._session_key = None
        return {}

    def _load_failed(self, exc: Exception) -> dict[str, Any]:
        if not self._conf.ignore_load_errors:
            self._conf.load_errors.log(
                logging.ERROR,
                "djredis: loading a session from %s failed (%s: %s); the request fails. "
                "SESSION_REDIS['ignore_load_errors'] = True serves an empty session instead",
                self._conf.source,
                type(exc).__name__,
                exc,
            )
            raise exc
        self._conf.load_errors.log(
            logging.WARNING,
            "djredis: loading a session from %s failed (%s: %s); ignore_load_errors is on, "
            "so this request sees an empty session (the stored one is kept)",
            self._conf.source,
            type(exc).__name__,
            exc,
        )
        self._load_error = exc
        return {}

    # -- operations, written once -----------------------------------------------------------

    def _op_load(self, session_key: str) -> Operation[bytes | None]:
        key = self._redis_key(session_key)
        try:
            raw: bytes | None = yield Call(("HGET", key, "d"))
        except ResponseError as exc:
            if "WRONGTYPE" not in str(exc):
                raise
            self._conf.garbage.log(
                logging.WARNING,
                "djredis: %r is not a djredis session (another tool's key?); the request "
                "gets a new, empty session",
                key,
            )
            return None
        return raw

    def _op_save(self, data: dict[str, Any], must_create: bool) -> Operation[bool]:
        session_key = self.session_key
        if session_key is None:  # pragma: no cover - save() creates a key first
            raise RuntimeError("a session without a key cannot be saved")
        payload = self.serializer().dumps(data)  # a TypeError here happens before any I/O
        ttl_ms = int(self.get_expiry_age(expiry=data.get("_session_expiry")) * 1000)
        uid = data.get(AUTH_USER_KEY)
        uid = "" if uid is None else str(uid)
        conf = self._conf
        ip, agent = self.client if (uid and conf.record_client and self.client) else ("", "")
        keys: tuple[str, ...] = (self._redis_key(session_key),)
        roles: tuple[str, ...] = ("session",)
        if uid:
            # Its own key in its own slot: on Redis Cluster the index update is a command of
            # its own, sent together with the session's (``Eval.per_key``).
            keys += (conf.index_key_prefix() + uid,)
            roles += ("index",)
        mode = "create" if must_create else "update"
        # No timestamp from this process: the script times the session and scores its index
        # entry with the Redis server's clock (an app server's clock may be off).
        written = yield Eval(
            lua("session_save"),
            keys,
            (mode, payload, ttl_ms, session_key, uid, ip, agent),
            per_key=roles,
        )
        if written and uid != self._stored_uid:
            if uid and observe.hooks is not None:
                observe.session_event("login")
            self._stored_uid = uid
        return bool(written)

    def _op_delete(self, session_key: str) -> Operation[bool]:
        # The user's index keeps the entry until it is next read: listing and revoking drop
        # entries whose session is gone.
        return bool((yield Call(("DEL", self._redis_key(session_key)))))

    def _op_exists(self, session_key: str) -> Operation[bool]:
        return bool((yield Call(("EXISTS", self._redis_key(session_key)))))

    def _check_saved(self, written: bool, must_create: bool) -> None:
        if not written:
            raise CreateError if must_create else UpdateError

    def _unsaved_after_load_error(self) -> bool:
        """Return True when save() must not write: the stored session was never read.

        Raises when the request changed the session, so nothing is lost silently.
        """
        exc = self._load_error
        if exc is None:
            return False
        if self.modified:
            raise type(exc)(
                f"the session could not be loaded earlier in this request ({exc}); "
                "it is not overwritten with this request's changes"
            ) from exc
        return True

    # -- the sync API -----------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        """Return the stored session data; an unknown key gives ``{}`` and no key."""
        session_key = self.session_key
        if session_key is None:
            return {}
        try:
            raw = run_sync(self._conf.group, self._op_load(session_key), _STRICT, "load", None)
        except CONNECTION_ERRORS as exc:
            return self._load_failed(exc)
        return self._decoded(raw)

    def exists(self, session_key: str | None) -> bool:
        """Return whether a session with this key is stored."""
        if not is_session_key(session_key):
            return False
        return run_sync(self._conf.group, self._op_exists(session_key), _STRICT, "exists", False)

    def create(self) -> None:
        """Store a new, empty (or the current) session under a fresh key."""
        for _attempt in range(CREATE_ATTEMPTS):
            self._session_key = self._get_new_session_key()
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError("Unable to create a new session key: every key tried existed.")

    def save(self, must_create: bool = False) -> None:
        """Write the session: only if absent with ``must_create``, else only if present."""
        if self._defer_saves:
            if self.session_key is None:  # the key goes into the cookie before the write
                self._session_key = self._get_new_session_key()
                must_create = True
            self._deferred = must_create or bool(self._deferred)
            return None
        if self.session_key is None:
            return self.create()
        if not must_create and self._unsaved_after_load_error():
            return None
        data: dict[str, Any] = self._get_session(no_load=must_create)  # type: ignore[attr-defined]
        op = self._op_save(data, must_create)
        written = run_sync(self._conf.group, op, _STRICT, "save", False)
        self._check_saved(written, must_create)
        return None

    def delete(self, session_key: str | None = None) -> None:
        """Delete the session (this one when ``session_key`` is None)."""
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        if not is_session_key(session_key):
            return
        run_sync(self._conf.group, self._op_delete(session_key), _STRICT, "delete", False)

    def clear(self) -> None:
        """Empty the session (and forget a failed load: the caller replaces the data)."""
        super().clear()
        self._load_error = None
        self._stored_uid = ""

    @classmethod
    def clear_expired(cls) -> None:
        """Do nothing: Redis expires sessions itself (``clearsessions`` calls this)."""

    # -- the async API: the same operations on the event loop -------------------------------

    async def _aget_session(self, no_load: bool = False) -> dict[str, Any]:
        """Return the session data as ``_get_session()`` does, loading it with ``aload()``.

        Django >= 5.0 has this hook; 4.2, which has no async session API, gets it here.
        """
        if not (no_load or self.session_key is None or hasattr(self, "_session_cache")):
            self._session_cache = await self.aload()
        data: dict[str, Any] = self._get_session(no_load)  # type: ignore[attr-defined]
        return data

    async def aload(self) -> dict[str, Any]:
        """Return the stored session data; an unknown key gives ``{}`` and no key."""
        session_key = self.session_key
        if session_key is None:
            return {}
        try:
            raw = await run_async(
                self._conf.group, self._op_load(session_key), _STRICT, "load", None
            )
        except CONNECTION_ERRORS as exc:
            return self._load_failed(exc)
        return self._decoded(raw)

    async def aexists(self, session_key: str | None) -> bool:
        """Return whether a session with this key is stored."""
        if not is_session_key(session_key):
            return False
        op = self._op_exists(session_key)
        return await run_async(self._conf.group, op, _STRICT, "exists", False)

    async def acreate(self) -> None:
        """Store a new, empty (or the current) session under a fresh key."""
        for _attempt in range(CREATE_ATTEMPTS):
            self._session_key = self._get_new_session_key()
            try:
                await self.asave(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError("Unable to create a new session key: every key tried existed.")

    async def asave(self, must_create: bool = False) -> None:
        """Write the session: only if absent with ``must_create``, else only if present."""
        if self.session_key is None:
            return await self.acreate()
        if not must_create and self._unsaved_after_load_error():
            return None
        data = await self._aget_session(no_load=must_create)
        op = self._op_save(data, must_create)
        written = await run_async(self._conf.group, op, _STRICT, "save", False)
        self._check_saved(written, must_create)
        return None

    @contextmanager
    def _saving_later(self) -> Iterator[None]:
        """Make ``save()`` record what to write, for ``_asave_later()`` to write on the loop."""
        self._defer_saves = True
        try:
            yield
        finally:
            self._defer_saves = False

    async def _asave_later(self) -> None:
        """Write what ``save()`` deferred, if anything (``UpdateError`` as ``asave()``)."""
        must_create, self._deferred = self._deferred, None
        if must_create is None:
            return
        if not must_create:
            await self.asave()
            return
        try:
            await self.asave(must_create=True)
        except CreateError:
            await self.acreate()

    async def adelete(self, session_key: str | None = None) -> None:
        """Delete the session (this one when ``session_key`` is None)."""
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        if not is_session_key(session_key):
            return
        await run_async(self._conf.group, self._op_delete(session_key), _STRICT, "delete", False)

    @classmethod
    async def aclear_expired(cls) -> None:
        """Do nothing: Redis expires sessions itself."""


# -- the per-user index ---------------------------------------------------------------------


def user_sessions(user: Any, *, current_session_key: str | None = None) -> list[SessionInfo]:
    """Return the user's live sessions (a user object or its primary key), soonest expiry
    first; ``current_session_key`` (``request.session.session_key``) marks ``current``."""
    conf = _current_settings()
    op = op_list(conf, user_id(user), current_session_key)
    return run_sync(conf.group, op, _STRICT, "user_sessions", [])


async def auser_sessions(user: Any, *, current_session_key: str | None = None) -> list[SessionInfo]:
    """Return the user's live sessions; the async twin of ``user_sessions()``."""
    conf = _current_settings()
    op = op_list(conf, user_id(user), current_session_key)
    return await run_async(conf.group, op, _STRICT, "user_sessions", [])


def revoke_session(user: Any, session_id: str) -> bool:
    """Delete the user's session with this id (``SessionInfo.id``); return whether it
    existed. The next request carrying its cookie is anonymous."""
    conf = _current_settings()
    op = op_revoke(conf, user_id(user), "id", session_id)
    return bool(run_sync(conf.group, op, _STRICT, "revoke_session", 0))


async def arevoke_session(user: Any, session_id: str) -> bool:
    """Delete the user's session with this id; the async twin of ``revoke_session()``."""
    conf = _current_settings()
    op = op_revoke(conf, user_id(user), "id", session_id)
    return bool(await run_async(conf.group, op, _STRICT, "revoke_session", 0))


def revoke_all_sessions(user: Any, *, keep: str | None = None) -> int:
    """Delete every session of the user ("log out everywhere"), except the one whose key
    is ``keep`` (pass ``request.session.session_key`` to stay logged in here); return how
    many were deleted."""
    conf = _current_settings()
    op = op_revoke(conf, user_id(user), "all", keep or "")
    return run_sync(conf.group, op, _STRICT, "revoke_all_sessions", 0)


async def arevoke_all_sessions(user: Any, *, keep: str | None = None) -> int:
    """Delete every session of the user but ``keep``; the async twin of
    ``revoke_all_sessions()``."""
    conf = _current_settings()
    op = op_revoke(conf, user_id(user), "all", keep or "")
    return await run_async(conf.group, op, _STRICT, "revoke_all_sessions", 0)


class RevokeSessionsOnPasswordChange:
    """Revoke all of a user's sessions when their password changes.

    Add ``{"NAME": "djredis.sessions.RevokeSessionsOnPasswordChange"}`` to
    ``AUTH_PASSWORD_VALIDATORS``: Django calls ``password_changed()`` on every validator
    after a user saved with a new password (``set_password()`` then ``save()``: the password
    change and reset views, the admin, ``changepassword``). The session of the request that
    changed it survives when the view calls ``update_session_auth_hash()`` (Django's
    ``PasswordChangeView`` does): that gives it a new key, written after the revocation.
    """

    def validate(self, password: str, user: Any = None) -> None:
        """Accept every password: this entry only listens for changes."""

    def password_changed(self, password: str, user: Any = None) -> None:
        """Revoke every session of ``user``."""
        if user is not None and getattr(user, "pk", None) is not None:
            revoke_all_sessions(user)

    def get_help_text(self) -> str:
        """Tell the user what a password change does to their other sessions."""
        return _("Changing your password signs you out of your other sessions.")
