"""View decorators: ``cache_page_per_user``, a ``cache_page`` that cannot serve one user's
page to another.

Django's ``cache_page`` keys a page on its URL and on the request headers the response
names in ``Vary``, as they were when the page was stored. Stacked under
``@vary_on_cookie`` (the order the guides show) the ``Vary: Cookie`` arrives after the
page was stored, so every user gets the first user's page; stacked above it, the key
holds the whole Cookie header, and each analytics or CSRF cookie makes a new entry.

``cache_page_per_user`` keys the page on who is asking instead:

* an authenticated user: the user's primary key;
* an anonymous visitor with a session that exists on the server: the session key (a
  forged or expired session cookie does not count: the session is loaded first);
* any other anonymous visitor: one page shared by all of them, except a page that holds
  something of that visitor's (a CSRF token, a session the view just started), which is
  not stored;
* an anonymous request carrying an ``Authorization`` header is not cached at all (an API
  view that authenticates inside the view would otherwise share its page).

The identity goes into the cache key as a hash, never a raw cookie; ``Vary: Cookie`` is
left out of the key (it is still sent to the browser), so decorator order does not
matter. Responses that set a cookie are never stored. Every response gets
``Cache-Control: private`` and ``Vary: Cookie``, so neither a shared proxy nor an outer
``cache_page``/site-wide cache middleware stores a per-user page. Everything else is
Django's ``cache_page`` (its ``CacheMiddleware`` does the work): GET and HEAD only,
status 200, ``max-age``/``Expires``, the cache alias and key prefix, and views answering
``TemplateResponse`` are stored once rendered.

It imports nothing else of djredis on purpose: it is a view decorator of the integration
layer, built on Django's own cache middleware, so it works with any cache alias (djredis's,
Django's builtin Redis or locmem backend); it sits at ``djredis.views`` beside where Django
keeps ``cache_page`` (``django.views.decorators.cache``).
"""

from __future__ import annotations

import copy
import functools
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponseBase
from django.middleware.cache import CacheMiddleware
from django.utils.cache import patch_cache_control, patch_vary_headers

try:  # asgiref >= 3.7 also knows views marked with markcoroutinefunction
    from asgiref.sync import iscoroutinefunction
except ImportError:  # pragma: no cover - Django 4.2 with an older asgiref
    from asyncio import iscoroutinefunction  # type: ignore[assignment]

__all__ = ["cache_page_per_user"]

V = TypeVar("V", bound=Callable[..., Any])

# The identity of a request that must not be cached at all.
_UNCACHED = object()
# The identity of every anonymous visitor without a session: one page for all of them.
_SHARED = "anonymous"


def cache_page_per_user(
    timeout: float | None, *, cache: str | None = None, key_prefix: str | None = None
) -> Callable[[V], V]:
    """Cache a view's page per user (or session), like ``cache_page(timeout)`` otherwise.

    ``timeout`` is in seconds; ``cache`` a cache alias (default: "default");
    ``key_prefix`` as in ``cache_page``. Works on sync and async views.
    """
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)):
        raise TypeError(
            f"cache_page_per_user timeout must be a number of seconds, not "
            f"{type(timeout).__name__}."
        )

    def decorator(view: V) -> V:
        base = CacheMiddleware(view, page_timeout=timeout, cache_alias=cache, key_prefix=key_prefix)
        prefix = base.key_prefix
        wrapper: Any
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                who = await _aidentity(request)
                if who is _UNCACHED:
                    return _personal(await view(request, *args, **kwargs))
                middleware = _for(base, prefix, who)
                # Django's own cache_page runs these synchronously for async views too.
                hit = middleware.process_request(request)
                if hit is not None:
                    return _personal(hit)
                response = await view(request, *args, **kwargs)
                return _store(middleware, request, response, shared=who == _SHARED)

        else:

            @functools.wraps(view)
            def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                who = _identity(request)
                if who is _UNCACHED:
                    return _personal(view(request, *args, **kwargs))
                middleware = _for(base, prefix, who)
                hit = middleware.process_request(request)
                if hit is not None:
                    return _personal(hit)
                response = view(request, *args, **kwargs)
                return _store(middleware, request, response, shared=who == _SHARED)

        decorated: V = wrapper  # view's signature, and its metadata by functools.wraps
        return decorated

    return decorator


def _for(base: CacheMiddleware, prefix: str, who: object) -> CacheMiddleware:
    """Return the view's middleware keyed for one identity (a copy: requests run at once)."""
    middleware = copy.copy(base)
    middleware.key_prefix = f"{prefix}.per-user.{who}"
    return middleware


def _hashed(kind: str, value: object) -> str:
    return kind + hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:32]


def _user_identity(request: HttpRequest) -> str | None:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return _hashed("u", user.pk)
    return None


def _identity(request: HttpRequest) -> object:
    who = _user_identity(request)
    if who is not None:
        return who
    session = getattr(request, "session", None)
    if session is not None:
        session.get("_")  # loads it: a session key that does not exist becomes None
        if session.session_key:
            return _hashed("s", session.session_key)
    return _anonymous(request)


async def _aidentity(request: HttpRequest) -> object:
    auser = getattr(request, "auser", None)
    if auser is not None:
        user = await auser()
        if user is not None and user.is_authenticated:
            return _hashed("u", user.pk)
    else:  # Django < 5.0: request.user is lazy and loads itself from the database, so
        # it is evaluated in a thread, never in the event loop.
        who = await sync_to_async(_user_identity)(request)
        if who is not None:
            return who
    session = getattr(request, "session", None)
    if session is not None:
        if hasattr(session, "aget"):
            await session.aget("_")
        else:  # Django < 5.1
            await sync_to_async(session.get)("_")
        if session.session_key:
            return _hashed("s", session.session_key)
    return _anonymous(request)


def _anonymous(request: HttpRequest) -> object:
    if request.headers.get("Authorization"):
        return _UNCACHED
    return _SHARED


def _store(middleware: CacheMiddleware, request: HttpRequest, response: Any, shared: bool) -> Any:
    if hasattr(response, "render") and callable(response.render):
        # Store the page once rendered, as cache_page does for a TemplateResponse.
        response.add_post_render_callback(
            lambda rendered: _update(middleware, request, rendered, shared)
        )
        return response
    return _update(middleware, request, response, shared)


def _update(middleware: CacheMiddleware, request: HttpRequest, response: Any, shared: bool) -> Any:
    if response.cookies or (shared and _personal_to_this_visitor(request)):
        request._cache_update_cache = False  # type: ignore[attr-defined]
    else:
        with _cookie_left_out_of_vary(response):
            response = middleware.process_response(request, response)
    return _personal(response)


def _personal_to_this_visitor(request: HttpRequest) -> bool:
    """Whether a page rendered for an anonymous visitor without a session holds something of
    theirs, so that it must not become everyone's page: a CSRF token (it reveals their CSRF
    secret, which would let whoever reads the page forge requests as them), or a session
    the view just started (its cookie is set on the way out, after the page is stored)."""
    if request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
        return True
    session = getattr(request, "session", None)
    return bool(session is not None and session.modified)


def _personal(response: HttpResponseBase) -> HttpResponseBase:
    """Mark a per-user page for what it is to the browser and to caches outside this one."""
    patch_vary_headers(response, ("Cookie",))
    patch_cache_control(response, private=True)
    return response


@contextmanager
def _cookie_left_out_of_vary(response: HttpResponseBase) -> Iterator[None]:
    """Hide ``Cookie`` from ``Vary`` while the page's key is learned: the key already says
    whose page it is, and a raw Cookie header would make one entry per cookie jar."""
    vary = response.get("Vary")
    if vary is None:
        yield
        return
    kept = [h.strip() for h in vary.split(",") if h.strip() and h.strip().lower() != "cookie"]
    if kept:
        response["Vary"] = ", ".join(kept)
    else:
        del response["Vary"]
    try:
        yield
    finally:
        learned = response.get("Vary")
        response["Vary"] = vary
        if learned:
            patch_vary_headers(response, [h.strip() for h in learned.split(",")])
