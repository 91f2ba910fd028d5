"""Read ``OPTIONS['NEAR_CACHE']``: ``True``, or a dict of the four settings below.

``MAX_ENTRIES`` and ``MAX_BYTES`` bound the local tier; ``MAX_STALENESS`` (seconds) is the
longest a local entry may be served after the write that replaced it completed; ``KEYS``
limits the near-cache to some keys: a list of prefixes of the keys callers pass
(``cache.get("flags:home")`` matches ``"flags:"``), or a callable taking that key and
returning whether it may be kept locally.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

__all__ = ["NearOptions", "parse_near_options"]

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_STALENESS = 0.1
# Below this the heartbeat (a PING every MAX_STALENESS / 4) would cost more than it saves.
MIN_STALENESS = 0.004
_KNOWN = ("MAX_ENTRIES", "MAX_BYTES", "MAX_STALENESS", "KEYS")


@dataclass(frozen=True)
class NearOptions:
    """The near-cache's settings, checked."""

    max_entries: int = DEFAULT_MAX_ENTRIES
    max_bytes: int = DEFAULT_MAX_BYTES
    max_staleness: float = DEFAULT_MAX_STALENESS
    keys: Callable[[Any], bool] | None = None

    def wants(self, key: Any) -> bool:
        """Whether the caller's ``key`` may be kept in the local tier."""
        return self.keys is None or self.keys(key)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ImproperlyConfigured(f"{name} must be a whole number >= 1, not {value!r}.")
    return value


def _prefixes(prefixes: tuple[str, ...]) -> Callable[[Any], bool]:
    def matches(key: Any) -> bool:
        return isinstance(key, str) and key.startswith(prefixes)

    return matches


def parse_near_options(value: Any, setting: str) -> NearOptions | None:
    """Return the near-cache settings, or None when it is off; ``setting`` names
    ``CACHES[alias]['OPTIONS']['NEAR_CACHE']`` in errors."""
    if value is None or value is False:
        return None
    if value is True:
        return NearOptions()
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(
            f"{setting} must be True, False or a dict with some of {', '.join(_KNOWN)}; "
            f"got {type(value).__name__}."
        )
    unknown = sorted(str(name) for name in value if name not in _KNOWN)
    if unknown:
        raise ImproperlyConfigured(
            f"{setting} has unknown keys {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(_KNOWN)}."
        )
    entries = _positive_int(
        value.get("MAX_ENTRIES", DEFAULT_MAX_ENTRIES), f"{setting}['MAX_ENTRIES']"
    )
    size = _positive_int(value.get("MAX_BYTES", DEFAULT_MAX_BYTES), f"{setting}['MAX_BYTES']")
    staleness = value.get("MAX_STALENESS", DEFAULT_MAX_STALENESS)
    if (
        isinstance(staleness, bool)
        or not isinstance(staleness, (int, float))
        or not math.isfinite(staleness)
        or staleness < MIN_STALENESS
    ):
        raise ImproperlyConfigured(
            f"{setting}['MAX_STALENESS'] must be a number of seconds >= {MIN_STALENESS}, "
            f"not {staleness!r}."
        )
    keys = value.get("KEYS")
    wanted: Callable[[Any], bool] | None
    if keys is None:
        wanted = None
    elif callable(keys):
        wanted = keys
    elif isinstance(keys, (list, tuple)) and all(isinstance(p, str) for p in keys):
        wanted = _prefixes(tuple(keys))
    else:
        raise ImproperlyConfigured(
            f"{setting}['KEYS'] must be a list of key prefixes (str) or a callable "
            f"taking a key and returning a bool; got {type(keys).__name__}."
        )
    return NearOptions(entries, size, float(staleness), wanted)
