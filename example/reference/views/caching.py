"""Caching demos: cache_page in a function and a class, fragments, the low-level API,
several cache aliases, and invalidation on model save."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.utils import make_template_fragment_key
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import translation
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import cache_page, never_cache
from django.views.decorators.http import require_POST

from djredis import get_redis_connection

from ..models import Article
from ..signals import ARTICLE_LIST_KEY, forget_article_list
from ._common import now, render_demo, slow_work

PAGE_SECONDS = 30
FRAGMENT_SECONDS = 60
FRAGMENT_NAME = "demo_fragment"
SIDEBAR_NAME = "user_sidebar"
COUNTER_KEY = "demo:counter"
COUNTER_SECONDS = 60
SOURCE_MARK = b"<!--page-source-->"
NOW_MARK = b"<!--now-->"
GUIDE_DECORATORS = "How to Use Redis with Django > Cache Decorators for Views"


def show_cache_source(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Fill in the status line and the clock of a cached page, outside the cache.

    The inner view marks the request when its body runs. When it did not run, the response
    came out of Redis. The stored copy keeps the placeholders, so every response says how
    it was made this time.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        request.view_body_ran = False  # type: ignore[attr-defined]
        response = view(request, *args, **kwargs)
        fresh = request.view_body_ran  # type: ignore[attr-defined]
        status = b"Freshly rendered (cache miss)" if fresh else b"Served from cache"
        response.content = response.content.replace(SOURCE_MARK, status).replace(
            NOW_MARK, now().encode()
        )
        return response

    return wrapper


# -- per-view caching --------------------------------------------------------------------


# never_cache wraps cache_page: Redis keeps the response for PAGE_SECONDS, but the browser
# is told not to reuse it without asking, so every click is answered by the server (and so
# by Redis). Without it the browser obeys cache_page's own "Cache-Control: max-age=30" and
# answers clicks from its disk cache, never reaching Django.
@show_cache_source
@never_cache
@cache_page(PAGE_SECONDS)
def cache_page_demo(request: HttpRequest) -> HttpResponse:
    """Render a slow page once; cache_page serves it from Redis for PAGE_SECONDS."""
    request.view_body_ran = True  # type: ignore[attr-defined]
    started = time.perf_counter()
    slow_work()
    context = {
        "rendered_at": now(),
        "render_ms": round((time.perf_counter() - started) * 1000),
        "seconds": PAGE_SECONDS,
        "title": "Per-view caching with cache_page",
    }
    return render_demo(
        request,
        "reference/cache_page.html",
        context,
        guide=GUIDE_DECORATORS,
        code=[cache_page_demo],
    )


@method_decorator(never_cache, name="dispatch")
@method_decorator(cache_page(PAGE_SECONDS), name="dispatch")
class CachedClassView(View):
    """The guide's class-based view, cached with method_decorator(cache_page(...))."""

    def get(self, request: HttpRequest) -> HttpResponse:
        request.view_body_ran = True  # type: ignore[attr-defined]
        started = time.perf_counter()
        slow_work()
        context = {
            "rendered_at": now(),
            "render_ms": round((time.perf_counter() - started) * 1000),
            "seconds": PAGE_SECONDS,
            "title": "A class-based view with method_decorator(cache_page)",
        }
        return render_demo(
            request,
            "reference/cache_page.html",
            context,
            guide=GUIDE_DECORATORS,
            code=[CachedClassView],
        )


cached_class_view = show_cache_source(CachedClassView.as_view())


# -- template fragment caching -----------------------------------------------------------


def _popular_items() -> list[str]:
    """Return the fragment's items, slowly: the template calls this only on a cache miss."""
    slow_work()
    return ["Caching a whole page", "Caching a fragment", "Counting with incr", "Sorted sets"]


def fragment_demo(request: HttpRequest) -> HttpResponse:
    """Cache one block for everyone and a sidebar per user and per language."""
    language = request.GET.get("lang", translation.get_language())
    if language not in dict(settings.LANGUAGES):
        language = settings.LANGUAGE_CODE
    user_key = request.user.pk if request.user.is_authenticated else "anonymous"
    key = make_template_fragment_key(FRAGMENT_NAME)
    sidebar_key = make_template_fragment_key(SIDEBAR_NAME, [user_key, language])
    context = {
        "page_rendered_at": now(),
        "popular_items": _popular_items,
        "fragment_seconds": FRAGMENT_SECONDS,
        "fragment_name": FRAGMENT_NAME,
        "fragment_key": cache.make_key(key),
        # Read before rendering: 0 means this very render is filling the fragment.
        "fragment_ttl": cache.ttl(key),
        "sidebar_key": cache.make_key(sidebar_key),
        "sidebar_ttl": cache.ttl(sidebar_key),
        "user_key": user_key,
        "languages": settings.LANGUAGES,
    }
    with translation.override(language):
        return render_demo(
            request,
            "reference/fragment.html",
            context,
            guide="How to Use Redis with Django > Template Fragment Caching",
            code=[fragment_demo],
        )


@require_POST
def fragment_invalidate(request: HttpRequest) -> HttpResponse:
    """Delete the cached fragment so that the next view renders it again."""
    cache.delete(make_template_fragment_key(FRAGMENT_NAME))
    return redirect("fragment")


# -- the low-level cache API -------------------------------------------------------------


def counter_demo(request: HttpRequest) -> HttpResponse:
    """Count clicks with cache.incr in a COUNTER_SECONDS window; show the TTL."""
    if request.method == "POST":
        if request.POST.get("action") == "reset":
            cache.delete(COUNTER_KEY)
        else:
            # add() opens the window (it sets the TTL only when the key is new); incr()
            # is atomic on the server and keeps that TTL.
            cache.add(COUNTER_KEY, 0, timeout=COUNTER_SECONDS)
            try:
                cache.incr(COUNTER_KEY)
            except ValueError:  # the window closed between add() and incr()
                cache.set(COUNTER_KEY, 1, timeout=COUNTER_SECONDS)
        return redirect("counter")
    context = {
        "value": cache.get(COUNTER_KEY, 0),
        "ttl": cache.ttl(COUNTER_KEY),
        "key": cache.make_key(COUNTER_KEY),
        "seconds": COUNTER_SECONDS,
    }
    return render_demo(
        request,
        "reference/counter.html",
        context,
        guide="How to Use Redis with Django > Basic Cache Operations",
        code=[counter_demo],
    )


def _api_tour() -> list[tuple[str, Any]]:
    """Run the guide's basic cache operations in order; return (call, result) pairs."""
    steps: list[tuple[str, Any]] = []

    def step(call: str, result: Any) -> None:
        steps.append((call, result))

    step("cache.set('my_key', 'my_value', timeout=300)", cache.set("my_key", "my_value", 300))
    step("cache.get('my_key')", cache.get("my_key"))
    step("cache.get('missing', default='default_value')", cache.get("missing", "default_value"))
    step("cache.has_key('my_key')", cache.has_key("my_key"))
    step("cache.ttl('my_key')  # djredis extra", cache.ttl("my_key"))  # type: ignore[attr-defined]
    step("cache.delete('my_key')", cache.delete("my_key"))
    step("cache.has_key('my_key')", cache.has_key("my_key"))
    step(
        "cache.set_many({'key1': 'value1', 'key2': 'value2'}, timeout=300)",
        cache.set_many({"key1": "value1", "key2": "value2"}, 300),
    )
    step("cache.get_many(['key1', 'key2'])", cache.get_many(["key1", "key2"]))
    step("cache.delete_many(['key1', 'key2'])", cache.delete_many(["key1", "key2"]))
    step("cache.set('counter', 0)", cache.set("counter", 0))
    step("cache.incr('counter')", cache.incr("counter"))
    step("cache.decr('counter')", cache.decr("counter"))
    cache.delete("new_key")
    step("cache.add('new_key', 'value', timeout=300)", cache.add("new_key", "value", 300))
    step("cache.add('new_key', 'other', timeout=300)", cache.add("new_key", "other", 300))
    cache.delete("expensive_key")
    step(
        "cache.get_or_set('expensive_key', compute, timeout=3600)",
        cache.get_or_set("expensive_key", lambda: "computed", 3600),
    )
    step(
        "cache.get_or_set('expensive_key', other, timeout=3600)",
        cache.get_or_set("expensive_key", lambda: "not called", 3600),
    )
    return steps


def api_tour(request: HttpRequest) -> HttpResponse:
    """Run every basic operation of the guide against Redis and show what each returned."""
    context = {"steps": _api_tour()}
    return render_demo(
        request,
        "reference/api_tour.html",
        context,
        guide="How to Use Redis with Django > Basic Cache Operations",
        code=[_api_tour],
    )


# -- several cache aliases ----------------------------------------------------------------


def caches_demo(request: HttpRequest) -> HttpResponse:
    """Write one key through each alias and show where it lands in Redis."""
    rows = []
    for alias, config in settings.CACHES.items():
        backend = caches[alias]
        backend.set("probe", f"written through {alias!r}")
        redis_key = backend.make_key("probe")
        redis_conn = get_redis_connection(alias)
        rows.append(
            {
                "alias": alias,
                "location": config["LOCATION"],
                "db": redis_conn.connection_pool.connection_kwargs.get("db", 0),
                "prefix": config.get("KEY_PREFIX", ""),
                "timeout": config.get("TIMEOUT", 300),
                "redis_key": redis_key,
                "ttl": redis_conn.ttl(redis_key),
                "value": backend.get("probe"),
            }
        )
    return render_demo(
        request,
        "reference/caches.html",
        {"rows": rows},
        guide="How to Use Redis with Django > Multiple Cache Configuration",
        code=[caches_demo],
        settings_names=["CACHES"],
    )


# -- invalidation on model save ------------------------------------------------------------


class ArticleForm(forms.ModelForm):
    """Edit an article's title and body."""

    class Meta:
        model = Article
        fields = ("title", "body")


def _article_list() -> list[dict[str, Any]]:
    """Read the articles from the database, slowly, with the time of the read."""
    slow_work(0.2)
    read_at = now()
    return [{"id": a.pk, "title": a.title, "read_at": read_at} for a in Article.objects.all()]


def articles_demo(request: HttpRequest) -> HttpResponse:
    """List the articles from the cache; a post_save signal deletes the list on any edit."""
    was_cached = cache.has_key(ARTICLE_LIST_KEY)
    articles = cache.get_or_set(ARTICLE_LIST_KEY, _article_list, timeout=3600)
    context = {"articles": articles, "was_cached": was_cached}
    return render_demo(
        request,
        "reference/articles.html",
        context,
        guide="Caching strategies > Invalidation on model save (signals)",
        code=[articles_demo, forget_article_list],
    )


def article_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit one article; saving it fires post_save, which deletes the cached list."""
    article = get_object_or_404(Article, pk=pk)
    form = ArticleForm(request.POST or None, instance=article)
    if request.method == "POST" and form.is_valid():
        form.save()
        return redirect("articles")
    return render_demo(
        request,
        "reference/article_edit.html",
        {"form": form, "article": article},
        guide="Caching strategies > Invalidation on model save (signals)",
    )
