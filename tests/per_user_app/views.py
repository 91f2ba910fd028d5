"""Views for the per-user page cache tests (tests/site/test_cache_page_per_user.py).

Each page says whose it is and which render produced it (``#n``): a cached page repeats
the number of the render that stored it.
"""

from __future__ import annotations

import itertools

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.template.response import TemplateResponse
from django.views.decorators.cache import cache_page
from django.views.decorators.vary import vary_on_cookie

from djredis.views import cache_page_per_user

RENDERS = itertools.count(1)


def _page(name: str) -> HttpResponse:
    return HttpResponse(f"Hello {name or 'anonymous'} #{next(RENDERS)}")


@vary_on_cookie
@cache_page_per_user(60)
def sync_vary_outside(request: HttpRequest) -> HttpResponse:
    """The guide's order, with the per-user decorator."""
    return _page(request.user.get_username())


@cache_page_per_user(60)
@vary_on_cookie
def sync_vary_inside(request: HttpRequest) -> HttpResponse:
    return _page(request.user.get_username())


@vary_on_cookie
@cache_page_per_user(60)
async def async_vary_outside(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    return _page(user.get_username())


@cache_page_per_user(60)
@vary_on_cookie
async def async_vary_inside(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    return _page(user.get_username())


@cache_page_per_user(60)
async def async_plain(request: HttpRequest) -> HttpResponse:
    """An async view without ``vary_on_cookie``: Django < 5.0 cannot stack that decorator
    on an async view at all, so this is the async form every supported Django runs."""
    if hasattr(request, "auser"):
        name = (await request.auser()).get_username()
    else:  # Django < 5.0: request.user loads from the database, so in a thread
        name = await sync_to_async(lambda: request.user.get_username())()
    return _page(name)


@cache_page_per_user(60)
def template_page(request: HttpRequest) -> TemplateResponse:
    template = engines["django"].from_string("Hello {{ name }} #{{ render }}")
    return TemplateResponse(
        request,
        template,  # type: ignore[arg-type]
        {"name": request.user.get_username(), "render": next(RENDERS)},
    )


@cache_page_per_user(60)
def sets_cookie(request: HttpRequest) -> HttpResponse:
    response = _page(request.user.get_username())
    response.set_cookie("theme", "dark")
    return response


@cache_page_per_user(60)
def not_found(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"gone #{next(RENDERS)}", status=404)


@cache_page_per_user(60)
def cart(request: HttpRequest) -> HttpResponse:
    """A page that depends on the anonymous visitor's session."""
    return HttpResponse(f"cart {request.session.get('cart')} #{next(RENDERS)}")


@cache_page(60)
@cache_page_per_user(60)
def under_cache_page(request: HttpRequest) -> HttpResponse:
    """Django's cache_page outside: it must not store the per-user page."""
    return _page(request.user.get_username())


@vary_on_cookie
@cache_page(60)
def guide_order(request: HttpRequest) -> HttpResponse:
    """The guides' @vary_on_cookie above @cache_page, for the trap test."""
    return _page(request.user.get_username())


@cache_page_per_user(60)
def form(request: HttpRequest) -> HttpResponse:
    """A page with a CSRF token in it."""
    template = engines["django"].from_string("{% csrf_token %} #{{ render }}")
    return HttpResponse(template.render({"render": next(RENDERS)}, request))


@cache_page_per_user(60)
def starts_session(request: HttpRequest) -> HttpResponse:
    """A GET that puts something in a new anonymous session (a "recently viewed" list)."""
    request.session["seen"] = request.GET.get("item", "")
    return HttpResponse(f"seen {request.session['seen']} #{next(RENDERS)}")
