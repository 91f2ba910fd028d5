"""Reproduce the guides' cached views, with djredis as the cache backend.

Each view is written as in the guide it comes from. The guides' templates print nothing
that changes, so every view here also puts a render number in its context: a test sees
the same number twice exactly when the second response came from the cache.
"""

from __future__ import annotations

import itertools
from collections import Counter
from types import SimpleNamespace

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import cache_control, cache_page
from django.views.decorators.vary import vary_on_cookie

RENDERS = itertools.count(1)
CALLS: Counter[str] = Counter()

# What the fragment-caching templates display; tests change these between requests.
SIDEBAR_ITEMS: list[SimpleNamespace] = [SimpleNamespace(name="News"), SimpleNamespace(name="Blog")]
PROFILES: dict[int, SimpleNamespace] = {
    1: SimpleNamespace(id=1, profile="Profile of Ada"),
    2: SimpleNamespace(id=2, profile="Profile of Grace"),
}


def _context() -> dict[str, int]:
    """Return the per-render context: a number that changes on every real render."""
    return {"render": next(RENDERS)}


# -- How to Use Redis with Django: "Cache Decorators for Views" ----------------------------


# Cache entire view for 15 minutes
@cache_page(60 * 15)
def my_view(request: HttpRequest) -> HttpResponse:
    """Render template.html, cached for 15 minutes."""
    context = _context()
    return render(request, "template.html", context)


# Cache with vary on headers
@cache_page(60 * 15)
@cache_control(private=True)
def user_specific_view(request: HttpRequest) -> HttpResponse:
    """Render user_template.html with Cache-Control: private."""
    context = _context()
    return render(request, "user_template.html", context)


# Cache class-based view
@method_decorator(cache_page(60 * 15), name="dispatch")
class MyView(View):
    """Render template.html from a class-based view cached through dispatch()."""

    def get(self, request: HttpRequest) -> HttpResponse:
        """Render the page."""
        return render(request, "template.html", _context())


# Per-user caching
@vary_on_cookie
@cache_page(60 * 15)
def user_view(request: HttpRequest) -> HttpResponse:
    """Render user.html for request.user (decorators in the guide's order)."""
    return render(request, "user.html", {"user": request.user, **_context()})


@cache_page(60 * 15)
@vary_on_cookie
def user_view_vary_inside(request: HttpRequest) -> HttpResponse:
    """Render user.html with vary_on_cookie inside cache_page, so the cache sees the Vary."""
    return render(request, "user.html", {"user": request.user, **_context()})


# -- Using Redis as Django's session store and cache backend (2013) -------------------------


def site_page(request: HttpRequest) -> HttpResponse:
    """Render a page with no decorator: only the site-wide cache middleware caches it."""
    return render(request, "template.html", _context())


# -- Django and Redis: Mastering Caching and Session Storage ------------------------------


@cache_page(60 * 15)  # Cache for 15 minutes
def plain_view(request: HttpRequest) -> HttpResponse:
    """Return the guide's constant response; CALLS counts how often the body ran."""
    CALLS["plain_view"] += 1
    # ... expensive operations ...
    return HttpResponse("This content is cached!")


def fragments(request: HttpRequest) -> HttpResponse:
    """Render the first guide's three {% cache %} blocks for ?user=<id>."""
    user = PROFILES[int(request.GET.get("user", "1"))]
    context = {"sidebar_items": SIDEBAR_ITEMS, "user": user, **_context()}
    return render(request, "fragments.html", context)


def user_fragment(request: HttpRequest) -> HttpResponse:
    """Render the third guide's per-user {% cache 500 sidebar request.user.id %} block."""
    return render(request, "user_fragment.html", _context())
