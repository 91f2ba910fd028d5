"""The RATELIMIT_* settings, read once and re-read when a test or a signal changes them.

Reading a missing Django setting with a default costs an exception each time; a decision
reads eight, so they are snapshotted here, and the snapshot (with the topologies found
for cache aliases) is dropped on Django's ``setting_changed`` signal.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

__all__ = ["Conf", "conf", "forget"]


@dataclass(frozen=True, slots=True)
class Conf:
    """What the decision path reads from settings (validated where it is used)."""

    enable: bool
    prefix: str
    fail_open: bool
    headers: bool
    use_cache: Any
    trusted_proxies: Any
    ipv4_mask: Any
    ipv6_mask: Any
    ip_meta_key: Any
    view: Any
    template: Any
    exception_class: Any


@functools.cache
def conf() -> Conf:
    """Return the current settings snapshot."""

    def read(name: str, default: Any) -> Any:
        return getattr(settings, name, default)

    return Conf(
        enable=bool(read("RATELIMIT_ENABLE", True)),
        prefix=str(read("RATELIMIT_CACHE_PREFIX", "rl:")),
        fail_open=_flag("RATELIMIT_FAIL_OPEN", read("RATELIMIT_FAIL_OPEN", False)),
        headers=bool(read("RATELIMIT_HEADERS", True)),
        use_cache=read("RATELIMIT_USE_CACHE", "default"),
        trusted_proxies=read("RATELIMIT_TRUSTED_PROXIES", None),
        ipv4_mask=read("RATELIMIT_IPV4_MASK", 32),
        ipv6_mask=read("RATELIMIT_IPV6_MASK", 64),
        ip_meta_key=read("RATELIMIT_IP_META_KEY", None),
        view=read("RATELIMIT_VIEW", None),
        template=read("RATELIMIT_TEMPLATE", None),
        exception_class=read("RATELIMIT_EXCEPTION_CLASS", None),
    )


def _flag(name: str, value: Any) -> bool:
    """A True/False setting; anything else (``"False"`` is truthy) is a configuration error."""
    if value in (True, False):  # also 1 and 0, which django-ratelimit accepts
        return bool(value)
    raise ImproperlyConfigured(f"{name} must be True or False, not {value!r}.")


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
