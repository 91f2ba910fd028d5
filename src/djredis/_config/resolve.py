"""Turn a SERIALIZER or COMPRESSOR setting into an object, or explain why it cannot.

Serializers and compressors are configured the same way (a short name, a dotted path, a
class or an instance), so both resolve through ``resolve_component`` with a ``Kind`` that
lists their names. Every failure is an ``ImproperlyConfigured`` that quotes the setting and
the value, because that is what the user has to go and fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

__all__ = ["Kind", "resolve_accepted", "resolve_component"]


@dataclass(frozen=True)
class Kind:
    """What one family of components is called and how its members can be spelled."""

    noun: str
    methods: tuple[str, str]
    # Lowercase short name -> class, or None for "no component".
    short_names: Mapping[str, type[Any] | None]
    # Exact dotted path -> class, or None for "no component".
    paths: Mapping[str, type[Any] | None]
    # Built-in class -> pip extra that provides its optional library.
    extras: Mapping[type[Any], str]
    accepted: str


def resolve_component(spec: object, *, setting: str, kind: Kind) -> Any:
    """Return an instance for ``spec`` (None if it names "no component")."""
    if isinstance(spec, str):
        target = _lookup(spec, setting, kind)
        if target is None or not isinstance(target, type):
            return target
        return _instantiate(target, spec, setting, kind)
    if isinstance(spec, type):
        # A class imported from Django or django-redis maps to ours, like its dotted path;
        # Django's RedisSerializer, for one, returns ints unserialized, which we cannot store.
        path = f"{spec.__module__}.{spec.__qualname__}"
        target = kind.paths.get(path, spec)
        if target is None:
            return None
        return _instantiate(target, spec, setting, kind)
    if _has_methods(spec, kind):
        return spec
    raise ImproperlyConfigured(f"{setting} = {spec!r} is not a {kind.noun}; use {kind.accepted}.")


def resolve_accepted(spec: object, *, setting: str, kind: Kind) -> list[Any]:
    """Return instances of the built-ins a list of short names names (an ACCEPT_* option:
    formats a cache reads besides its own); ``None`` is the empty list."""
    if spec is None:
        return []
    names = sorted(name for name, cls in kind.short_names.items() if cls is not None)
    usage = f"a list of {', '.join(map(repr, names))}"
    if not isinstance(spec, (list, tuple)):
        raise ImproperlyConfigured(f"{setting} = {spec!r} must be {usage}.")
    accepted = []
    for name in spec:
        if not isinstance(name, str) or kind.short_names.get(name.lower()) is None:
            close = difflib.get_close_matches(str(name).lower(), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ImproperlyConfigured(
                f"{setting}: {name!r} is not a built-in {kind.noun}{hint}; it must be {usage}."
            )
        accepted.append(resolve_component(name, setting=setting, kind=kind))
    return accepted


def _lookup(spec: str, setting: str, kind: Kind) -> object:
    lowered = spec.lower()
    if lowered in kind.short_names:
        return kind.short_names[lowered]
    if spec in kind.paths:
        return kind.paths[spec]
    # An unknown django_redis path is a typo, since every django-redis class is mapped;
    # importing it would fail anyway when django_redis is not installed, less helpfully.
    if "." not in spec or spec.startswith("django_redis."):
        raise ImproperlyConfigured(
            f"{setting} = {spec!r} is not a known {kind.noun}{_suggest(spec, kind)}; "
            f"use {kind.accepted}."
        )
    try:
        found = import_string(spec)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"{setting} = {spec!r} could not be imported ({exc}); use {kind.accepted}."
        ) from exc
    if isinstance(found, type) or _has_methods(found, kind):
        return found
    raise ImproperlyConfigured(
        f"{setting} = {spec!r} names {found!r}, which is not a {kind.noun}; use {kind.accepted}."
    )


def _instantiate(cls: type[Any], spec: object, setting: str, kind: Kind) -> object:
    try:
        try:
            instance = cls()
        except TypeError as exc:
            # django-redis serializers and compressors take their OPTIONS dict.
            try:
                instance = cls({})
            except TypeError:
                raise ImproperlyConfigured(
                    f"{setting} = {spec!r} could not be instantiated ({exc}); use {kind.accepted}."
                ) from exc
    except ImportError as exc:
        extra = next((e for c, e in kind.extras.items() if issubclass(cls, c)), None)
        if extra is None:
            raise ImproperlyConfigured(
                f"{setting} = {spec!r} could not be instantiated ({exc})."
            ) from exc
        raise ImproperlyConfigured(
            f"{setting} = {spec!r} needs the optional {extra} support, which is not "
            f"installed: pip install 'djredis[{extra}]'."
        ) from exc
    if not _has_methods(instance, kind):
        first, second = kind.methods
        raise ImproperlyConfigured(
            f"{setting} = {spec!r} has no {first}() and {second}() methods; use {kind.accepted}."
        )
    return instance


def _has_methods(obj: object, kind: Kind) -> bool:
    return all(callable(getattr(obj, name, None)) for name in kind.methods)


def _suggest(spec: str, kind: Kind) -> str:
    if "." in spec:
        close = difflib.get_close_matches(spec, list(kind.paths), n=1)
    else:
        close = difflib.get_close_matches(spec.lower(), list(kind.short_names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
