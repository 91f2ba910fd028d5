"""Load the Lua scripts shipped in ``djredis/lua/`` once, to be called by SHA."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

__all__ = ["LuaScript", "lua"]


@dataclass(frozen=True)
class LuaScript:
    """A script's source and SHA1; runners send EVALSHA and fall back to EVAL once."""

    name: str
    source: str
    sha: str


_INCLUDE = "-- include: "


@cache
def lua(name: str) -> LuaScript:
    """Return the script ``djredis/lua/<name>.lua``; a line ``-- include: <other>`` is
    replaced by ``<other>.lua`` (shared local functions, defined before they are used)."""
    source = _source(name)
    return LuaScript(name, source, hashlib.sha1(source.encode()).hexdigest())


def _source(name: str) -> str:
    text = (files("djredis") / "lua" / f"{name}.lua").read_text(encoding="utf-8")
    return "".join(
        _source(line[len(_INCLUDE) :].strip()) if line.startswith(_INCLUDE) else line
        for line in text.splitlines(keepends=True)
    )
