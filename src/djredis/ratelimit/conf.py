"""The RATELIMIT_* settings, read once and re-read when a test or a signal changes them.

Reading a missing Django setting with a default costs an exception each time; a decision
reads eight, so they are snapshotted here, and the snapshot (with the topologies found
for cache aliases) is dropped on Django's ``setting_changed`` signal.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from djredis._config.component import option, read_component, spellings

__all__ = ["Networks", "RateLimitSettings", "conf", "forget", "read_settings"]


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def _flag(value: Any, *, setting: str) -> bool:
    """A True/False setting; anything else (``"False"`` is truthy) is a configuration error."""
    if value in (True, False):  # also 1 and 0, which django-ratelimit accepts
        return bool(value)
    raise ImproperlyConfigured(f"{setting} must be True or False, not {value!r}.")


def _trusted(value: Any, *, setting: str) -> int | Networks:
    """A hop count, or the proxies' networks (None: no proxy)."""
    if value is None:
        return 0
    if isinstance(value, bool) or (isinstance(value, int) and value < 0):
        raise ImproperlyConfigured(
            f"{setting} must be a number of proxy hops (>= 0) or a list of networks, not {value!r}."
        )
    if isinstance(value, int):
        return value
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ImproperlyConfigured(
            f"{setting} must be a number of proxy hops or a list of networks "
            f"(['10.0.0.0/8']), not {type(value).__name__}."
        )
    networks = []
    for cidr in value:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except (TypeError, ValueError):
            raise ImproperlyConfigured(
                f"{setting}: {cidr!r} is not an IP network such as '10.0.0.0/8' or '2001:db8::/32'."
            ) from None
    return tuple(networks)


def _mask(bits: int) -> Callable[..., int]:
    def check(value: Any, *, setting: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= bits:
            raise ImproperlyConfigured(f"{setting} must be a prefix length from 0 to {bits}.")
        return value

    return check


@dataclass(frozen=True)
class RateLimitSettings:
    """What the decision path reads from settings."""

    enable: bool = option("RATELIMIT_ENABLE", default=True, parse=lambda v, **_: bool(v))
    prefix: str = option("RATELIMIT_CACHE_PREFIX", default="rl:", parse=lambda v, **_: str(v))
    fail_open: bool = option("RATELIMIT_FAIL_OPEN", default=False, parse=_flag)
    headers: bool = option("RATELIMIT_HEADERS", default=True, parse=lambda v, **_: bool(v))
    use_cache: Any = option("RATELIMIT_USE_CACHE", default="default")  # checked when used
    trusted_proxies: int | Networks = option("RATELIMIT_TRUSTED_PROXIES", default=0, parse=_trusted)
    ipv4_mask: int = option("RATELIMIT_IPV4_MASK", default=32, parse=_mask(32))
    ipv6_mask: int = option("RATELIMIT_IPV6_MASK", default=64, parse=_mask(128))
    ip_meta_key: Any = option("RATELIMIT_IP_META_KEY")
    view: Any = option("RATELIMIT_VIEW")
    template: Any = option("RATELIMIT_TEMPLATE")
    exception_class: Any = option("RATELIMIT_EXCEPTION_CLASS")


def read_settings(given: Mapping[str, Any]) -> RateLimitSettings:
    """Return the settings of ``given`` (setting name -> value), the others' defaults."""
    return read_component(
        RateLimitSettings, given, "settings", noun="rate limit setting", where=str
    )


@functools.cache
def conf() -> RateLimitSettings:
    """Return the current settings snapshot."""
    names = spellings(RateLimitSettings)
    return read_settings(
        {name: getattr(settings, name) for name in names if hasattr(settings, name)}
    )


_forgetters: list[Any] = [conf.cache_clear]


def forget(cached: Any) -> Any:
    """Forget what ``cached`` holds whenever the settings change: it is a function made by
    ``functools.cache``/``lru_cache`` (then used as a decorator) or a ``clear`` method."""
    _forgetters.append(getattr(cached, "cache_clear", cached))
    return cached


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("RATELIMIT_") or setting == "CACHES":
        for clear in _forgetters:
            clear()


setting_changed.connect(_on_setting_changed, dispatch_uid="djredis.ratelimit.conf")
