"""System checks for rate limiting, with stable IDs (``manage.py check``).

- ``djredis.ratelimit.E001``: a rate that does not parse;
- ``djredis.ratelimit.E002``: an unknown key type;
- ``djredis.ratelimit.E003``: a cache alias that is missing or not a djredis cache;
- ``djredis.ratelimit.E004``: an unknown algorithm, or another malformed rule;
- ``djredis.ratelimit.E005``: ``RATELIMIT_TRUSTED_PROXIES`` or an IP mask is malformed;
- ``djredis.ratelimit.E006``: ``RATELIMIT_FAIL_OPEN`` or a rule's ``fail_open`` is not
  True/False (``"False"`` would be true);
- ``djredis.ratelimit.W001``: ``RATELIMIT_FAIL_OPEN = True``: while Redis gives no
  decision, every rule without its own ``fail_open`` admits every request;
- ``djredis.ratelimit.W002``: the cache is a ``DummyCache``, so no limit is enforced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.cache.backends.dummy import DummyCache
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from djredis._config.component import spellings
from djredis.ratelimit.conf import RateLimitSettings, read_settings
from djredis.ratelimit.core import ALGORITHMS
from djredis.ratelimit.keys import resolve_key
from djredis.ratelimit.middleware import RULE_OPTIONS
from djredis.ratelimit.rates import parse_rate

__all__ = ["check_ratelimit_settings"]


def _cache_error(alias: Any, setting: str) -> CheckMessage | None:
    caches: Mapping[str, Any] = getattr(settings, "CACHES", {})
    if not isinstance(alias, str) or alias not in caches:
        return Error(
            f"{setting} = {alias!r}, but CACHES has no cache of that name.",
            hint="Name a djredis cache alias from CACHES.",
            id="djredis.ratelimit.E003",
        )
    backend = caches[alias].get("BACKEND", "")
    try:
        cls = import_string(backend) if isinstance(backend, str) else backend
    except ImportError:
        cls = None
    if isinstance(cls, type) and issubclass(cls, DummyCache):
        return Warning(
            f"{setting} = {alias!r} is a DummyCache: rate limits are not enforced.",
            hint="Fine in development and tests; in production name a djredis cache.",
            id="djredis.ratelimit.W002",
        )
    if not isinstance(getattr(cls, "topology", None), property):
        return Error(
            f"{setting} = {alias!r} is a {backend!r} cache; rate limiting needs "
            "'djredis.cache.RedisCache'.",
            id="djredis.ratelimit.E003",
        )
    return None


def _rule_errors(index: int, spec: Any) -> list[CheckMessage]:
    where = f"RATELIMIT_RULES[{index}]"
    if not isinstance(spec, Mapping):
        return [Error(f"{where} must be a dict.", id="djredis.ratelimit.E004")]
    errors: list[CheckMessage] = []
    unknown = set(spec) - RULE_OPTIONS
    if unknown:
        errors.append(
            Error(
                f"{where} has unknown options {sorted(unknown)}.",
                hint=f"Known options: {sorted(RULE_OPTIONS)}.",
                id="djredis.ratelimit.E004",
            )
        )
    rate = spec.get("rate")
    dotted = isinstance(rate, str) and "/" not in rate and "." in rate
    if rate is not None and not callable(rate) and not dotted:  # None: no limit
        try:
            parse_rate(rate)
        except (TypeError, ValueError) as exc:
            errors.append(Error(f"{where}['rate']: {exc}", id="djredis.ratelimit.E001"))
    try:
        resolve_key(spec.get("key", "ip"))
    except (ImproperlyConfigured, TypeError) as exc:
        errors.append(Error(f"{where}['key']: {exc}", id="djredis.ratelimit.E002"))
    if spec.get("algorithm", "sliding") not in ALGORITHMS:
        errors.append(
            Error(
                f"{where}['algorithm'] = {spec.get('algorithm')!r}; use one of {ALGORITHMS}.",
                id="djredis.ratelimit.E004",
            )
        )
    if spec.get("fail_open") not in (None, True, False):
        errors.append(
            Error(
                f"{where}['fail_open'] = {spec['fail_open']!r}; use True or False.",
                id="djredis.ratelimit.E006",
            )
        )
    if spec.get("cache") is not None:
        error = _cache_error(spec["cache"], f"{where}['cache']")
        if error is not None:
            errors.append(error)
    return errors


def _setting_errors() -> list[CheckMessage]:
    """E005/E006: each RATELIMIT_* setting the snapshot reads, read on its own."""
    errors: list[CheckMessage] = []
    for name in sorted(spellings(RateLimitSettings)):
        if hasattr(settings, name):
            try:
                read_settings({name: getattr(settings, name)})
            except ImproperlyConfigured as exc:
                code = "E006" if name == "RATELIMIT_FAIL_OPEN" else "E005"
                errors.append(Error(str(exc), id=f"djredis.ratelimit.{code}"))
    return errors


def _fail_open_messages() -> list[CheckMessage]:
    value = getattr(settings, "RATELIMIT_FAIL_OPEN", False)
    if value in (True, False) and value:
        return [
            Warning(
                "RATELIMIT_FAIL_OPEN = True: while Redis gives no decision, every rule "
                "without its own fail_open admits every request (a login form included).",
                hint="Prefer fail_open=True on the rules that may admit; silence with "
                "SILENCED_SYSTEM_CHECKS = ['djredis.ratelimit.W001'] if this is meant.",
                id="djredis.ratelimit.W001",
            )
        ]
    return []


@register("djredis")
def check_ratelimit_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Check the RATELIMIT_* settings."""
    errors: list[CheckMessage] = []
    error = _cache_error(getattr(settings, "RATELIMIT_USE_CACHE", "default"), "RATELIMIT_USE_CACHE")
    if error is not None:
        errors.append(error)
    errors.extend(_fail_open_messages())
    rules = getattr(settings, "RATELIMIT_RULES", None) or []
    if not isinstance(rules, list | tuple):
        errors.append(
            Error("RATELIMIT_RULES must be a list of dicts.", id="djredis.ratelimit.E004")
        )
        rules = []
    for index, spec in enumerate(rules):
        errors.extend(_rule_errors(index, spec))
    errors.extend(_setting_errors())
    return errors
