"""``@memoize``: cache a function's results in a Django cache, one entry per distinct call.

::

    from djredis.cache import memoize

    @memoize(60 * 5)
    def top_products(category, limit=10): ...

    @memoize(timeout=60, cache="other", stampede=Stampede(lock_timeout=2))
    async def exchange_rates(base="EUR"): ...

    top_products.invalidate("books")          # the entry for top_products("books", 10)
    await exchange_rates.ainvalidate()

The key is ``memoize:<module>.<qualname>:<digest of the bound arguments>``: arguments are
bound to the signature and defaults applied, so ``f(1, x=2)``, ``f(x=2, a=1)`` and
``f(1)`` (with ``x=2`` the default) are one call, and they are encoded canonically
(``djredis.cache.arguments``). The cache adds its KEY_PREFIX and version as for any key.
``None`` is cached like any other result. On a djredis cache a recomputation is protected
against stampedes (``djredis.cache.stampede``): on by default, ``stampede=False`` to turn
it off. Any other Django cache works too, without the protection.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar, cast, overload

from django.core.cache import DEFAULT_CACHE_ALIAS, BaseCache, caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT

from djredis.cache.arguments import digest
from djredis.cache.base import MISSING, CacheBase
from djredis.cache.codec import UndecodableValue
from djredis.cache.stampede import Stampede, drive_async, drive_sync, plan, resolve

__all__ = ["Memoized", "memoize"]

P = ParamSpec("P")
R = TypeVar("R", covariant=True)


class Memoized(Protocol[P, R]):
    """What ``@memoize`` returns: the function, plus ways to drop and name its entries."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Delete the entry for this call; return whether there was one."""
        ...

    async def ainvalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Delete the entry for this call; return whether there was one."""
        ...

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Return the cache key (before KEY_PREFIX and version) for this call."""
        ...


@overload
def memoize(func: Callable[P, R], /) -> Memoized[P, R]: ...


@overload
def memoize(
    timeout: float | None = ...,
    *,
    cache: str | BaseCache = ...,
    version: int | None = ...,
    key: str | Callable[..., str] | None = ...,
    stampede: bool | Stampede = ...,
) -> Callable[[Callable[P, R]], Memoized[P, R]]: ...


def memoize(
    timeout: Any = DEFAULT_TIMEOUT,
    *,
    cache: str | BaseCache = DEFAULT_CACHE_ALIAS,
    version: int | None = None,
    key: str | Callable[..., str] | None = None,
    stampede: bool | Stampede = True,
) -> Any:
    """Cache the decorated function's results; ``@memoize`` or ``@memoize(timeout, ...)``.

    ``timeout``: seconds, as in ``cache.set`` (default: the cache's TIMEOUT; None: never
    expires). ``cache``: a cache alias or a cache object. ``version``: the cache version.
    ``key``: a format string over the argument names (``"user:{user_id}"``) or a callable
    taking the function's arguments and returning the key. ``stampede``: True (default),
    False, or a ``Stampede`` with its own lock timeout and XFetch ``beta``.
    """
    if callable(timeout) and not isinstance(timeout, BaseCache):
        return memoize()(timeout)
    if (timeout is not DEFAULT_TIMEOUT and timeout is not None) and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float)
    ):
        raise TypeError(
            f"memoize timeout must be a number of seconds or None, not {type(timeout).__name__}."
        )
    if not isinstance(cache, str | BaseCache):
        raise TypeError(
            f"memoize cache= must be a cache alias or a cache, not {type(cache).__name__}."
        )
    if key is not None and not isinstance(key, str) and not callable(key):
        raise TypeError(f"memoize key= must be a str or a callable, not {type(key).__name__}.")
    protection = resolve(stampede)

    def decorate(func: Callable[P, R]) -> Memoized[P, R]:
        memo = _Memo(func, timeout, cache, version, key, protection)
        wrapper: Any
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await memo.acall(args, kwargs)

        else:

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return memo.call(args, kwargs)

        wrapper.invalidate = memo.invalidate
        wrapper.ainvalidate = memo.ainvalidate
        wrapper.cache_key = memo.cache_key
        return cast(Memoized[P, R], wrapper)

    return decorate


def _wrap(value: Any, delta: float, expiry: float | None) -> list[Any]:
    # A list, so that JSON and msgpack serializers store it as well as pickle does.
    return [value, round(delta, 6), expiry]


def _unwrap(stored: Any) -> tuple[Any, float, float | None]:
    if isinstance(stored, list | tuple) and len(stored) == 3:
        value, delta, expiry = stored
        if isinstance(delta, int | float) and (expiry is None or isinstance(expiry, int | float)):
            return value, float(delta), expiry
    raise UndecodableValue("the value is not a memoize entry")


class _Memo:
    """The state behind one memoized function."""

    def __init__(
        self,
        func: Callable[..., Any],
        timeout: Any,
        cache: str | BaseCache,
        version: int | None,
        key: str | Callable[..., str] | None,
        protection: Stampede | None,
    ) -> None:
        self.func = func
        self.timeout = timeout
        self.cache = cache
        self.version = version
        self.key = key
        self.protection = protection
        self.signature = inspect.signature(func)
        # A callable object (no __qualname__ of its own) is named by its class.
        name = getattr(func, "__qualname__", None) or type(func).__qualname__
        module = getattr(func, "__module__", None) or type(func).__module__
        self.prefix = f"memoize:{module}.{name}:"
        params = list(self.signature.parameters.values())
        # Positional-only calls of a plain signature skip bind() (the hit path's cost): the
        # arguments are the values given, then the defaults of the parameters not given.
        self.simple = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
        self.names = tuple(p.name for p in params)
        self.defaults = tuple(p.default for p in params)
        self.required = sum(p.default is p.empty for p in params)

    def _cache(self) -> BaseCache:
        if isinstance(self.cache, BaseCache):
            return self.cache
        return caches[self.cache]

    def cache_key(self, *args: Any, **kwargs: Any) -> str:
        return self._user_key(args, kwargs)

    def _user_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if callable(self.key):
            return str(self.key(*args, **kwargs))
        given = len(args)
        if (
            self.simple
            and not kwargs
            and self.required <= given <= len(self.names)
            and all(d is not inspect.Parameter.empty for d in self.defaults[given:])
        ):
            values = args + self.defaults[given:]
        else:
            bound = self.signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = tuple(bound.arguments.values())
        if self.key is not None:
            return self.key.format(**dict(zip(self.names, values, strict=True)))
        # The names are the signature's, in its order: the values alone say which call.
        return self.prefix + digest(values)

    def _plan(self, cache: CacheBase, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        full = cache._key(self._user_key(args, kwargs), version=self.version)
        return plan(
            cache, full, self.timeout, self.protection, unwrap=_unwrap, wrap=_wrap, name="memoize"
        )

    def call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        cache = self._cache()
        if isinstance(cache, CacheBase):
            steps = self._plan(cache, args, kwargs)
            return drive_sync(cache, steps, lambda: self.func(*args, **kwargs), "memoize")
        key = self._user_key(args, kwargs)
        stored = cache.get(key, MISSING, version=self.version)
        if stored is not MISSING:
            try:
                return _unwrap(stored)[0]
            except UndecodableValue:
                pass
        value = self.func(*args, **kwargs)
        cache.set(key, _wrap(value, 0.0, None), self.timeout, version=self.version)
        return value

    async def acall(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        cache = self._cache()
        if isinstance(cache, CacheBase):
            steps = self._plan(cache, args, kwargs)
            return await drive_async(cache, steps, lambda: self.func(*args, **kwargs), "memoize")
        key = self._user_key(args, kwargs)
        stored = await cache.aget(key, MISSING, version=self.version)
        if stored is not MISSING:
            try:
                return _unwrap(stored)[0]
            except UndecodableValue:
                pass
        value = await self.func(*args, **kwargs)
        await cache.aset(key, _wrap(value, 0.0, None), self.timeout, version=self.version)
        return value

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        return bool(self._cache().delete(self._user_key(args, kwargs), version=self.version))

    async def ainvalidate(self, *args: Any, **kwargs: Any) -> bool:
        deleted = await self._cache().adelete(self._user_key(args, kwargs), version=self.version)
        return bool(deleted)
