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

from djredis._config.component import option, read_component, whole

__all__ = ["NearCacheSettings", "parse_near_options"]

# Below this the heartbeat (a PING every MAX_STALENESS / 4) would cost more than it saves.
MIN_STALENESS = 0.004


def _staleness(value: Any, *, setting: str) -> float:
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    if not number or not math.isfinite(value) or value < MIN_STALENESS:
        raise ImproperlyConfigured(
            f"{setting} must be a number of seconds >= {MIN_STALENESS}, not {value!r}."
        )
    return float(value)


def _keys(value: Any, *, setting: str) -> Callable[[Any], bool] | None:
    if value is None or callable(value):
        wanted: Callable[[Any], bool] | None = value
        return wanted
    if isinstance(value, (list, tuple)) and all(isinstance(p, str) for p in value):
        prefixes = tuple(value)
        return lambda key: isinstance(key, str) and key.startswith(prefixes)
    raise ImproperlyConfigured(
        f"{setting} must be a list of key prefixes (str) or a callable "
        f"taking a key and returning a bool; got {type(value).__name__}."
    )


@dataclass(frozen=True)
class NearCacheSettings:
    """The near-cache's settings, checked."""

    max_entries: int = option("MAX_ENTRIES", default=10_000, parse=whole(1))
    max_bytes: int = option("MAX_BYTES", default=16 * 1024 * 1024, parse=whole(1))
    max_staleness: float = option("MAX_STALENESS", default=0.1, parse=_staleness)
    keys: Callable[[Any], bool] | None = option("KEYS", parse=_keys)

    def wants(self, key: Any) -> bool:
        """Whether the caller's ``key`` may be kept in the local tier."""
        return self.keys is None or self.keys(key)


def parse_near_options(value: Any, setting: str) -> NearCacheSettings | None:
    """Return the near-cache settings, or None when it is off; ``setting`` names
    ``CACHES[alias]['OPTIONS']['NEAR_CACHE']`` in errors."""
    if value is None or value is False:
        return None
    if value is True:
        return NearCacheSettings()
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(f"{setting} must be True, False or a dict, not {value!r}.")
    return read_component(NearCacheSettings, value, setting, noun="djredis near-cache setting")
