"""What a refused request gets: 429, ``Retry-After`` and the IETF RateLimit header fields.

``HttpResponseTooManyRequests`` is the class the guides import (Django has none).
``RateLimit-Policy`` and ``RateLimit`` follow draft-ietf-httpapi-ratelimit-headers-09
(structured-field lists: ``"default";q=100;w=60`` and ``"default";r=42;t=17``); set
``RATELIMIT_HEADERS = False`` to send neither. The 429 page is ``RATELIMIT_VIEW`` (a view
``(request, exception)``, as in django-ratelimit), else ``RATELIMIT_TEMPLATE`` rendered with
``{"ratelimit": result}``, else a short text, or, for a client that asks for JSON (an
``Accept`` naming ``application/json`` or a ``+json`` type, and not ``text/html``), a JSON
body ``{"detail": ..., "retry_after": seconds}`` in DRF's shape. ``Ratelimited`` is the
exception for code that raises instead (API frameworks, ``RATELIMIT_EXCEPTION_CLASS``).
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.template import loader
from django.utils.module_loading import import_string

from djredis.ratelimit.conf import conf
from djredis.ratelimit.core import Result

__all__ = [
    "HttpResponseTooManyRequests",
    "Ratelimited",
    "add_headers",
    "exception_class",
    "header_fields",
    "refusal",
]

POLICY = '"default"'
DETAIL = "Too many requests. Please try again later."


class HttpResponseTooManyRequests(HttpResponse):
    """A 429 Too Many Requests response (RFC 6585)."""

    status_code = 429


class Ratelimited(PermissionDenied):
    """A request over its rate limit; ``result`` holds the decision (None if unknown).

    A ``PermissionDenied``, like django-ratelimit's ``Ratelimited``, so code that catches
    that keeps working; ``RateLimitMiddleware`` turns it into a 429.
    """

    status_code = 429

    def __init__(self, result: Result | None = None, *args: Any) -> None:
        super().__init__(*args or ("Too many requests",))
        self.result = result


def headers_enabled() -> bool:
    return conf().headers


def header_fields(result: Result, *, refused: bool) -> dict[str, str]:
    """Return the header fields describing ``result`` (``Retry-After`` when refused)."""
    fields: dict[str, str] = {}
    if refused:
        fields["Retry-After"] = str(max(1, math.ceil(result.retry_after)))
    if headers_enabled() and not result.unavailable:
        window = result.rate.seconds
        w = int(window) if float(window).is_integer() else math.ceil(window)
        fields["RateLimit-Policy"] = f"{POLICY};q={result.limit};w={w}"
        reset = result.retry_after if refused else result.reset_after
        fields["RateLimit"] = f"{POLICY};r={result.remaining};t={math.ceil(reset)}"
    return fields


def add_headers(response: Any, result: Result | None, *, refused: bool = False) -> Any:
    """Set ``result``'s header fields on ``response`` (a no-op for non-responses)."""
    if result is not None and isinstance(response, HttpResponseBase):
        for name, value in header_fields(result, refused=refused).items():
            response[name] = value
    return response


def exception_class() -> type[Exception] | None:
    """Return ``RATELIMIT_EXCEPTION_CLASS`` (django-ratelimit's setting), or None."""
    cls: Any = conf().exception_class
    if cls is None:
        return None
    found: type[Exception] = import_string(cls) if isinstance(cls, str) else cls
    return found


def refusal(request: HttpRequest, result: Result | None, exception: Exception | None = None) -> Any:
    """Return the 429 response for ``request`` (may be a coroutine if RATELIMIT_VIEW is async).

    ``RATELIMIT_VIEW`` receives ``exception`` (the one raised, if any) as django-ratelimit's
    does. Header fields are added by the caller (``add_headers``) once the response is final.
    """
    view: Any = conf().view
    if view:
        view = import_string(view) if isinstance(view, str) else view
        return view(request, exception if exception is not None else Ratelimited(result))
    template = conf().template
    if template:
        body = loader.render_to_string(template, {"ratelimit": result}, request)
        return HttpResponseTooManyRequests(body)
    if wants_json(request):
        retry_after = None if result is None else max(1, math.ceil(result.retry_after))
        return JsonResponse({"detail": DETAIL, "retry_after": retry_after}, status=429)
    return HttpResponseTooManyRequests(DETAIL + "\n", content_type="text/plain")


def wants_json(request: HttpRequest) -> bool:
    """Tell whether ``request`` asks for JSON rather than a page.

    True when its ``Accept`` names ``application/json`` or a ``+json`` type and not
    ``text/html``: API clients and ``fetch(..., {headers: {Accept: "application/json"}})``
    get JSON; browsers navigating (they accept ``text/html``) and ``*/*`` get the text.
    """
    accept = request.headers.get("Accept", "")
    if "json" not in accept:
        return False
    types = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    json_named = any(t == "application/json" or t.endswith("+json") for t in types)
    return json_named and "text/html" not in types
