"""Write a cache method once and get it both ways: ``sadd`` and its ``asadd`` twin.

Most of the cache's Redis methods (sets, sorted sets, hashes, TTLs) are an operation
(``djredis._core.commands``) run by the cache's sync or async runner, with the value
``IGNORE_EXCEPTIONS`` gives back when Redis is away. ``twin`` turns the method that builds
the operation into both public methods::

    @twin(fallback=0)
    def sadd(self, key: Any, *values: Any, version: int | None = None) -> Operation[int]:
        \"""Add members; return how many were new.\"""
        return self._op_with_members("SADD", key, values, version)

    asadd = sadd.aio

``cache.sadd(...)`` then returns an ``int`` and ``await cache.asadd(...)`` the same, with the
builder's signature and docstring (``help()``, ``inspect.signature``). When the class is
created, each name is replaced by a plain function, so a call costs what a hand-written
wrapper costs. Type checkers read the descriptors: ``sadd`` takes the builder's parameters
and returns ``int``; ``asadd`` returns ``Awaitable[int]``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from djredis._core.commands import Operation

__all__ = ["Runner", "twin"]

P = ParamSpec("P")
T = TypeVar("T")
F = TypeVar("F")


class Runner(Protocol):
    """What a twin's methods run on: the cache (``CacheBase``'s runners)."""

    def _run(self, operation: Operation[T], name: str, fallback: F) -> T | F:
        """Run ``operation`` with blocking I/O; ``fallback`` when an error is ignored."""
        ...

    def _arun(self, operation: Operation[T], name: str, fallback: F) -> Awaitable[T | F]:
        """Run ``operation`` on the running event loop."""
        ...


Build = Callable[Concatenate[Any, P], Operation[T]]


class _Twin(Generic[P, T]):
    """The sync method; ``.aio`` is its ``a*`` twin (see the module docstring)."""

    def __init__(self, build: Build[P, T], fallback: Callable[[], Any], name: str | None) -> None:
        self.build = build
        self.fallback = fallback
        self.name = name or build.__name__
        self.aio: _AsyncTwin[P, T] = _AsyncTwin(self)

    def __set_name__(self, owner: type, attribute: str) -> None:
        build, name, fallback = self.build, self.name, self.fallback

        @functools.wraps(build)
        def method(self: Runner, *args: Any, **kwargs: Any) -> Any:
            return self._run(build(self, *args, **kwargs), name, fallback())

        setattr(owner, attribute, _returning_result(method, build))

    @overload
    def __get__(self, obj: None, objtype: type) -> _Twin[P, T]: ...
    @overload
    def __get__(self, obj: object, objtype: type) -> Callable[P, T]: ...
    def __get__(self, obj: object, objtype: type) -> Any:  # pragma: no cover - replaced
        raise AttributeError("replaced by a function when the class is created")


class _AsyncTwin(Generic[P, T]):
    """The ``a*`` twin of a ``_Twin``."""

    def __init__(self, sync: _Twin[P, T]) -> None:
        self.sync = sync

    def __set_name__(self, owner: type, attribute: str) -> None:
        build, name, fallback = self.sync.build, self.sync.name, self.sync.fallback

        @functools.wraps(build)
        async def method(self: Runner, *args: Any, **kwargs: Any) -> Any:
            return await self._arun(build(self, *args, **kwargs), name, fallback())

        method.__name__ = attribute
        method.__qualname__ = f"{owner.__qualname__}.{attribute}"
        setattr(owner, attribute, _returning_result(method, build))

    @overload
    def __get__(self, obj: None, objtype: type) -> _AsyncTwin[P, T]: ...
    @overload
    def __get__(self, obj: object, objtype: type) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, obj: object, objtype: type) -> Any:  # pragma: no cover - replaced
        raise AttributeError("replaced by a function when the class is created")


def _returning_result(method: Callable[..., Any], build: Callable[..., Any]) -> Any:
    """Give ``method`` the builder's signature with the operation's result as its return
    annotation (``Operation[int]`` -> ``int``), for ``help()`` and ``inspect.signature``."""
    signature = inspect.signature(build)
    result = signature.return_annotation
    if isinstance(result, str) and result.startswith("Operation[") and result.endswith("]"):
        result = result[len("Operation[") : -1]
    method.__signature__ = signature.replace(return_annotation=result)  # type: ignore[attr-defined]
    method.__annotations__ = {**build.__annotations__, "return": result}
    return method


def twin(
    fallback: Any = None, *, factory: Callable[[], Any] | None = None, name: str | None = None
) -> Callable[[Build[P, T]], _Twin[P, T]]:
    """Make the decorated operation builder a cache method and (``.aio``) its ``a*`` twin.

    ``fallback`` is what both return when ``IGNORE_EXCEPTIONS`` ignores a Redis error (an
    immutable value), or ``factory()`` makes a fresh one each time (``factory=set``: the
    caller may change what it gets); ``name`` is the operation's name in logs and metrics
    (the method's name by default).
    """
    make: Callable[[], Any] = factory if factory is not None else (lambda: fallback)

    def decorate(build: Build[P, T]) -> _Twin[P, T]:
        return _Twin(build, make, name)

    return decorate
