"""Read a component's settings into a frozen dataclass: one reader for every component.

A component declares what its setting holds as a frozen dataclass whose fields are made with
``option()``: the key users write (and older spellings), a default, and ``parse``, which
checks and converts a given value and raises ``ImproperlyConfigured`` naming the setting.
``read_component`` rejects an unknown key, named as the user wrote it (with "did you mean"
when one is close), and one key spelled twice with different values. Fields made without
``option()`` are not read: the caller passes them, or ``__post_init__`` derives them.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured

__all__ = ["boolean", "connection_options", "option", "read_component", "spellings", "whole"]

T = TypeVar("T")
_OPTION = "djredis.option"


def option(*names: str, default: Any = None, factory: Any = None, parse: Any = None) -> Any:
    """Return a field read from the key ``names[0]`` (else the field's name) or an older
    spelling ``names[1:]``; ``parse(value, setting=...)`` converts a given value."""
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={_OPTION: (names, parse)})
    return dataclasses.field(default=default, metadata={_OPTION: (names, parse)})


def _options(cls: type[Any]) -> dict[str, tuple[tuple[str, ...], Any]]:
    """Return each option field's name -> (its keys, its parse)."""
    found = (f for f in dataclasses.fields(cls) if _OPTION in f.metadata)
    return {f.name: (f.metadata[_OPTION][0] or (f.name,), f.metadata[_OPTION][1]) for f in found}


def spellings(cls: type[Any]) -> frozenset[str]:
    """Return every key ``cls``'s options are read from."""
    return frozenset(key for keys, _ in _options(cls).values() for key in keys)


def read_component(
    cls: type[T],
    raw: object,
    setting: str,
    /,
    *,
    noun: str,
    any_case: bool = False,
    strict: bool = True,
    where: Callable[[str], str] | None = None,
    **given: Any,
) -> T:
    """Return ``cls`` read from ``raw``, the mapping the user wrote as ``setting``.

    ``noun`` says what a key is in errors; ``any_case`` accepts each key lowercase or
    uppercase; ``strict=False`` leaves unknown keys to another reader. ``where(key)`` names
    one key's setting (``setting[key]`` by default); ``given`` are the fields not read.
    """
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"{setting} must be a dict, got {type(raw).__name__}.")
    name_of = where or (lambda key: f"{setting}[{key!r}]")
    fold: Callable[[str], str] = str.lower if any_case else str
    options = _options(cls)
    owner = {fold(key): name for name, (keys, _) in options.items() for key in keys}
    found: dict[str, tuple[str, Any]] = {}  # field -> (key as written, value)
    unknown = []
    for key, value in raw.items():
        name = owner.get(fold(str(key)))
        if name is None:
            unknown += [str(key)] if strict else []
        elif name in found and found[name][1] != value:
            raise ImproperlyConfigured(
                f"{setting} sets {found[name][0]!r} and {key!r} to different values "
                f"({found[name][1]!r} and {value!r}); keep one."
            )
        else:
            found[name] = (str(key), value)
    if unknown:
        accepted = sorted(keys[0] for keys, _ in options.values())
        close = difflib.get_close_matches(fold(unknown[0]), map(fold, accepted), n=1)
        hint = ""
        if close and len(unknown) == 1:
            match = close[0].upper() if unknown[0].isupper() else close[0]
            hint = f" (did you mean {name_of(match) if where else repr(match)}?)"
        verb = f"is not a {noun}" if len(unknown) == 1 else f"are not {noun}s"
        case = " (lowercase or uppercase)" if any_case else ""
        raise ImproperlyConfigured(
            f"{', '.join(map(name_of, unknown))} {verb}{hint}. "
            f"Accepted{case}: {', '.join(accepted)}."
        )
    values = {
        name: value if options[name][1] is None else options[name][1](value, setting=name_of(key))
        for name, (key, value) in found.items()
    }
    return cls(**values, **given)


# -- converters the components share (``parse=``) ----------------------------------------


def boolean(value: Any, *, setting: str) -> bool:
    """True or False, nothing else (``"False"`` would be true)."""
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"{setting} must be True or False, got {value!r}.")
    return value


def whole(minimum: int) -> Callable[..., int]:
    """Return a converter accepting an int >= ``minimum`` (never a bool)."""

    def check(value: Any, *, setting: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ImproperlyConfigured(
                f"{setting} must be a whole number >= {minimum}, got {value!r}."
            )
        return value

    return check


def connection_options(value: Any, *, setting: str) -> dict[str, Any]:
    """A dict of connection OPTIONS (None: none)."""
    if not isinstance(value or {}, Mapping):
        raise ImproperlyConfigured(f"{setting} must be a dict of connection options.")
    return dict(value or {})
