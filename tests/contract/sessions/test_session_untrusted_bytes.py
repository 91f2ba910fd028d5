"""Session data in Redis is untrusted: it is read with SESSION_SERIALIZER only, and what
is not a session (a planted pickle, JSON that is not an object) is an empty session and a
log line, never code run or a crash later in the request."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import redis

from djredis.sessions import SessionStore
from tests._sessions import Sessions, redis_key

pytestmark = pytest.mark.usefixtures("sessions")


class Mkdir:
    """An attacker's pickle: loading it creates the directory ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (self.path,))


def planted(sessions: redis.Redis, data: bytes) -> SessionStore:
    """Store ``data`` where a session's data lives, as raw redis-py would."""
    key = "plantedsession0000000000"
    sessions.hset(redis_key(key), "d", data)
    sessions.pexpire(redis_key(key), 60_000)
    return SessionStore(key)


def test_a_planted_pickle_is_an_empty_session_and_never_runs(
    ops: Sessions, sessions: redis.Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "pwned"
    store = planted(sessions, pickle.dumps(Mkdir(str(target))))
    with caplog.at_level(logging.WARNING, "djredis.sessions"):
        assert ops.load(store) == {}
    assert not target.exists()
    assert store.session_key is None  # never reused: a new key on save
    assert "cannot be decoded" in caplog.text


@pytest.mark.parametrize("data", [b"[1, 2]", b'"text"', b"42", b"null", b"[]"])
def test_json_that_is_not_an_object_is_an_empty_session(
    ops: Sessions, sessions: redis.Redis, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    store = planted(sessions, data)
    with caplog.at_level(logging.WARNING, "djredis.sessions"):
        assert ops.load(store) == {}
    assert store.session_key is None
    assert "not a dict" in caplog.text
