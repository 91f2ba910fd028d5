"""Turn a rule's ``key`` into the value a request is counted under.

The keys are django-ratelimit's, with the same meaning: ``"ip"`` (see ``client_ip``),
``"user"`` (``str(user.pk)``), ``"user_or_ip"``, ``"header:<name>"``, ``"get:<param>"``,
``"post:<param>"``, a callable ``key(group, request)`` or the dotted path of one. Async
views read the user with ``await request.auser()`` (no thread hop, no sync DB access in
the event loop), and an ``async def`` key is awaited.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils.module_loading import import_string

from djredis.ratelimit.client_ip import client_ip

__all__ = ["ACCESSORS", "SIMPLE_KEYS", "KeyFunction", "akey_value", "key_value", "resolve_key"]

KeyFunction = Callable[[str, HttpRequest], Any]
SIMPLE_KEYS = ("ip", "user", "user_or_ip")
ACCESSORS = ("header", "get", "post")


def resolve_key(key: Any) -> str | KeyFunction:
    """Return ``key`` checked: a built-in name, or the callable it names.

    Raises ``ImproperlyConfigured`` for an unknown key and ``TypeError`` for a non-key.
    """
    if callable(key):
        given: KeyFunction = key  # called as key(group, request)
        return given
    if not isinstance(key, str):
        raise TypeError(
            f"a rate limit key is a string ('ip', 'header:x-api-key', 'path.to.fn') or a "
            f"callable, not {type(key).__name__}"
        )
    if key in SIMPLE_KEYS:
        return key
    if ":" in key:
        accessor, name = key.split(":", 1)
        if accessor not in ACCESSORS or not name:
            raise ImproperlyConfigured(
                f"Unknown rate limit key {key!r}: the prefixed keys are 'header:<name>', "
                "'get:<param>' and 'post:<param>'."
            )
        return key
    if "." in key:
        try:
            function = import_string(key)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"Rate limit key {key!r} cannot be imported: {exc}"
            ) from None
        if not callable(function):
            raise ImproperlyConfigured(f"Rate limit key {key!r} is not callable.")
        named: KeyFunction = function
        return named
    raise ImproperlyConfigured(
        f"Unknown rate limit key {key!r}: use 'ip', 'user', 'user_or_ip', 'header:<name>', "
        "'get:<param>', 'post:<param>', a callable or its dotted path."
    )


def _accessor(request: HttpRequest, key: str) -> str:
    accessor, name = key.split(":", 1)
    if accessor == "header":
        return str(request.META.get("HTTP_" + name.replace("-", "_").upper(), ""))
    if accessor == "get":
        return str(request.GET.get(name, ""))
    return str(request.POST.get(name, ""))


def _no_user(key: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"Rate limit key {key!r} reads request.user: add "
        "'django.contrib.auth.middleware.AuthenticationMiddleware' to MIDDLEWARE."
    )


def _user_key(user: Any, request: HttpRequest, key: str) -> str:
    if user is None:
        raise _no_user(key)
    if key == "user_or_ip" and not user.is_authenticated:
        return client_ip(request)
    return str(user.pk)


def key_value(key: str | KeyFunction, group: str, request: HttpRequest) -> str:
    """Return the value ``request`` is counted under (sync views)."""
    if callable(key):
        return str(key(group, request))
    if key == "ip":
        return client_ip(request)
    if key in ("user", "user_or_ip"):
        return _user_key(getattr(request, "user", None), request, key)
    return _accessor(request, key)


async def akey_value(key: str | KeyFunction, group: str, request: HttpRequest) -> str:
    """Return the value ``request`` is counted under (async views: the user via ``auser``)."""
    if callable(key):
        value = key(group, request)
        if inspect.isawaitable(value):
            value = await value
        return str(value)
    if key in ("user", "user_or_ip"):
        auser = getattr(request, "auser", None)
        user = await auser() if auser is not None else getattr(request, "user", None)
        return _user_key(user, request, key)
    return key_value(key, group, request)
