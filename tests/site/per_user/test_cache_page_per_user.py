"""``djredis.views.cache_page_per_user`` through the Django test client, on a real Redis.

Sessions live in the Redis cache, users in the test database; views and URLs are in
tests/per_user_app/. A page shows whose it is and the render that made it (``#n``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import django
import pytest
import redis
from django.test import Client

from djredis.views import cache_page_per_user

RENDER = re.compile(r"#(\d+)")
PAGE_KEYS = "*views.decorators.cache.cache_page*"


def rendered(response: Any) -> int:
    match = RENDER.search(response.content.decode())
    assert match, response.content
    return int(match.group(1))


def page_keys(client: redis.Redis) -> list[bytes]:
    return sorted(client.scan_iter(match=PAGE_KEYS))


# Django < 5.0's vary_on_cookie cannot wrap an async view (nor be wrapped around one):
# it calls the view synchronously and patches the coroutine it gets back. Decorators
# learned async views in Django 5.0.
_DJANGO_5_DECORATORS = pytest.mark.skipif(
    django.VERSION < (5, 0),
    reason="Django < 5.0's vary_on_cookie does not support async views (added in Django 5.0)",
)
VIEWS = [
    "sync-vary-outside",
    "sync-vary-inside",
    pytest.param("async-vary-outside", marks=_DJANGO_5_DECORATORS),
    pytest.param("async-vary-inside", marks=_DJANGO_5_DECORATORS),
    "async-plain",
]


@pytest.mark.parametrize("view", VIEWS)
def test_two_users_never_see_each_others_page(
    site: Callable[[str], Client], redis_client: redis.Redis, view: str
) -> None:
    alice, bob = site("alice"), site("bob")
    url = f"/{view}/"

    pages = [alice.get(url), bob.get(url), alice.get(url), bob.get(url)]

    texts = [page.content.decode() for page in pages]
    assert [t.split(" #")[0] for t in texts] == ["Hello alice", "Hello bob"] * 2
    assert rendered(pages[2]) == rendered(pages[0])  # served from the cache
    assert rendered(pages[3]) == rendered(pages[1])
    assert rendered(pages[0]) != rendered(pages[1])
    assert len(page_keys(redis_client)) == 2  # one per user, not one per cookie jar


@pytest.mark.parametrize("view", VIEWS)
def test_other_cookies_do_not_split_a_users_page(
    site: Callable[[str], Client], redis_client: redis.Redis, view: str
) -> None:
    alice = site("alice")
    first = alice.get(f"/{view}/")
    alice.cookies["_ga"] = "GA1.2.3"
    second = alice.get(f"/{view}/")

    assert rendered(second) == rendered(first)
    assert len(page_keys(redis_client)) == 1


def test_cached_pages_are_private_vary_on_cookie_and_carry_max_age(
    site: Callable[[str], Client],
) -> None:
    alice = site("alice")
    for response in (alice.get("/sync-vary-inside/"), alice.get("/sync-vary-inside/")):
        assert "private" in response["Cache-Control"]
        assert "max-age=60" in response["Cache-Control"]
        assert "Cookie" in response["Vary"]
        assert response.has_header("Expires")


def test_anonymous_visitors_without_a_session_share_one_page(
    site: Callable[[str], Client], redis_client: redis.Redis
) -> None:
    one, other = Client(), Client()
    first, second = one.get("/sync-vary-inside/"), other.get("/sync-vary-inside/")

    assert first.content.decode().startswith("Hello anonymous")
    assert rendered(second) == rendered(first)


def test_forged_session_cookies_share_the_anonymous_page(
    site: Callable[[str], Client], settings: Any, redis_client: redis.Redis
) -> None:
    pages = []
    for forged in ("a" * 32, "b" * 32, "not-a-session"):
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = forged
        pages.append(rendered(client.get("/cart/")))

    assert len(set(pages)) == 1
    assert len(page_keys(redis_client)) == 1


def test_anonymous_visitor_with_a_session_gets_their_own_page(
    site: Callable[[str], Client],
) -> None:
    shopper, stranger = Client(), Client()
    session = shopper.session
    session["cart"] = 3
    session.save()

    mine = shopper.get("/cart/")
    theirs = stranger.get("/cart/")

    assert mine.content.decode().startswith("cart 3")
    assert theirs.content.decode().startswith("cart None")
    assert rendered(shopper.get("/cart/")) == rendered(mine)


def test_authorization_header_without_a_user_is_never_cached(
    site: Callable[[str], Client], redis_client: redis.Redis
) -> None:
    client = Client(headers={"Authorization": "Token abc"})

    first, second = client.get("/cart/"), client.get("/cart/")

    assert rendered(second) != rendered(first)
    assert page_keys(redis_client) == []


def test_responses_that_set_cookies_are_never_stored(
    site: Callable[[str], Client], redis_client: redis.Redis
) -> None:
    alice = site("alice")

    first, second = alice.get("/sets-cookie/"), alice.get("/sets-cookie/")

    assert rendered(second) != rendered(first)
    assert page_keys(redis_client) == []


def test_only_get_and_head_with_status_200_are_cached(
    site: Callable[[str], Client], redis_client: redis.Redis
) -> None:
    alice = site("alice")

    assert rendered(alice.get("/not-found/")) != rendered(alice.get("/not-found/"))
    posted = [rendered(alice.post("/sync-vary-inside/")) for _ in range(2)]
    assert posted[0] != posted[1]
    assert page_keys(redis_client) == []
    got = alice.get("/sync-vary-inside/")
    head = alice.head("/sync-vary-inside/")
    assert head.status_code == 200
    assert head.content == b""
    assert rendered(alice.get("/sync-vary-inside/")) == rendered(got)


def test_template_responses_are_stored_once_rendered(site: Callable[[str], Client]) -> None:
    alice, bob = site("alice"), site("bob")

    pages = [alice.get("/template/"), bob.get("/template/"), alice.get("/template/")]

    assert pages[0].content.decode().startswith("Hello alice")
    assert pages[1].content.decode().startswith("Hello bob")
    assert rendered(pages[2]) == rendered(pages[0])


def test_an_outer_cache_page_does_not_store_the_per_user_page(
    site: Callable[[str], Client],
) -> None:
    alice, bob = site("alice"), site("bob")

    alice.get("/under-cache-page/")
    bob_page = bob.get("/under-cache-page/")

    assert bob_page.content.decode().startswith("Hello bob")


def test_guide_order_with_djangos_cache_page_serves_alice_page_to_bob(
    site: Callable[[str], Client],
) -> None:
    """The trap this decorator exists for: @vary_on_cookie above @cache_page.

    ``cache_page`` stores the page before ``vary_on_cookie`` adds ``Vary: Cookie``, so the
    key holds neither the cookie nor the user, and Bob is served the page made for Alice.
    """
    alice, bob = site("alice"), site("bob")

    alice_page = alice.get("/guide-order/")
    bob_page = bob.get("/guide-order/")

    assert bob_page.content.decode().startswith("Hello alice")
    assert rendered(bob_page) == rendered(alice_page)


def test_timeout_must_be_a_number() -> None:
    with pytest.raises(TypeError, match="timeout must be a number"):
        cache_page_per_user("60")  # type: ignore[arg-type]


def test_anonymous_page_with_a_csrf_token_is_never_shared(
    site: Callable[[str], Client], redis_client: redis.Redis
) -> None:
    """Sharing it would hand the first visitor's CSRF secret to everyone after them."""
    first, second = Client().get("/form/"), Client().get("/form/")

    token = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
    assert token.search(first.content.decode())
    assert rendered(first) != rendered(second)
    assert page_keys(redis_client) == []


def test_a_users_page_with_a_csrf_token_is_cached_for_that_user(
    site: Callable[[str], Client],
) -> None:
    alice, bob = site("alice"), site("bob")

    pages = [alice.get("/form/"), bob.get("/form/"), alice.get("/form/")]

    assert rendered(pages[2]) == rendered(pages[0])
    assert rendered(pages[1]) != rendered(pages[0])


def test_anonymous_page_that_starts_a_session_is_not_shared(
    site: Callable[[str], Client], redis_client: redis.Redis
) -> None:
    first = Client().get("/starts-session/?item=secret-diagnosis")
    second = Client().get("/starts-session/")

    assert first.content.decode().startswith("seen secret-diagnosis")
    assert second.content.decode().startswith("seen  #")
    assert page_keys(redis_client) == []
