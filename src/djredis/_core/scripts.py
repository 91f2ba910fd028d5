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


@cache
def lua(name: str) -> LuaScript:
    """Return the script ``djredis/lua/<name>.lua``."""
    source = (files("djredis") / "lua" / f"{name}.lua").read_text(encoding="utf-8")
    return LuaScript(name, source, hashlib.sha1(source.encode()).hexdigest())
