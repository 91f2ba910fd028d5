"""Process-wide objects built once per key: pools, clients, topologies."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, MutableMapping
from typing import TypeVar

__all__ = ["built_once"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def built_once(
    registry: MutableMapping[K, V], lock: threading.Lock, key: K, build: Callable[[], V]
) -> V:
    """Return ``registry[key]``, calling ``build`` under ``lock`` when it is missing, so
    that threads racing for the same key get one object. Callers look the key up without
    the lock first: this is the slow path."""
    with lock:
        found = registry.get(key)
        if found is None:
            found = registry[key] = build()
    return found
