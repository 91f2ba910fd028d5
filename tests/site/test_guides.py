"""Run every cache snippet of the three Django + Redis guides against djredis.

The guides (shared/seeds: "How to Use Redis with Django", "Using Redis as Django's session
store and cache backend" (2013), "Django and Redis: Mastering Caching and Session Storage")
are written for django-redis. Each snippet is repeated here as the guide writes it with
only the backend path changed (``django_redis.cache.RedisCache`` ->
``djredis.cache.RedisCache``, ``from django_redis import get_redis_connection`` ->
``from djredis import get_redis_connection``) and ``localhost:6379`` replaced by the test
server. Each test then checks what a user of the guide would check: the values, the keys
and TTLs on the server, and whether a second request was served from the cache.

Views, URLs and templates live in tests/guide_app/.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.test import Client

from tests._servers import RedisServer
from tests.guide_app import views

TEMPLATES_DIR = Path(__file__).parent.parent / "guide_app" / "templates"
RENDER = re.compile(r"#(\d+)")


# -- helpers and fixtures ----------------------------------------------------------------


def rendered(response: Any) -> int:
    """Return the first render number in a response: equal numbers mean a cached response."""
    match = RENDER.search(response.content.decode())
    assert match, response.content
    return int(match.group(1))


def server_keys(client: redis.Redis, pattern: str) -> list[bytes]:
    """Return the keys on the server matching a glob (SCAN, as a user would)."""
    return sorted(client.scan_iter(match=pattern))


def close_all_caches() -> None:
    """Close every configured cache alias (Django does this after each request)."""
    for alias in caches:
        caches[alias].close()


@pytest.fixture
def use_caches(
    settings: Any, redis_client: redis.Redis
) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Install a guide's CACHES block as settings.CACHES (on a freshly emptied server)."""

    def install(block: dict[str, Any]) -> None:
        settings.CACHES = block

    yield install
    close_all_caches()


@pytest.fixture
def basic_settings(redis_server: RedisServer, use_caches: Callable[[dict[str, Any]], None]) -> None:
    """Install the first guide's "Basic Cache Setup" block (KEY_PREFIX 'myapp')."""
    # settings.py
    CACHES = {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": redis_server.url(0),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 5,
                "SOCKET_TIMEOUT": 5,
                "RETRY_ON_TIMEOUT": True,
                "MAX_CONNECTIONS": 50,
                "CONNECTION_POOL_CLASS_KWARGS": {
                    "max_connections": 50,
                },
            },
            "KEY_PREFIX": "myapp",
            "TIMEOUT": 300,  # 5 minutes default
        }
    }
    use_caches(CACHES)


@pytest.fixture
def guide_site(settings: Any, django_caches: Any) -> Any:
    """Serve tests/guide_app's URLs and templates, with CACHES 'default' on the test server."""
    settings.ROOT_URLCONF = "tests.guide_app.urls"
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [TEMPLATES_DIR],
            "APP_DIRS": False,
            "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
        }
    ]
    return django_caches


@pytest.fixture
def user_site(settings: Any, guide_site: Any, db: None) -> Callable[[str], Client]:
    """Add sessions (in the Redis cache) and auth; return a factory of logged-in clients."""
    from django.contrib.auth.models import User

    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    settings.MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]

    def logged_in(username: str) -> Client:
        client = Client()
        client.force_login(User.objects.create_user(username))
        return client

    return logged_in


# -- settings blocks ---------------------------------------------------------------------


@pytest.mark.usefixtures("basic_settings")
def test_basic_setup_block_prefixes_keys_and_applies_default_timeout(
    redis_client: redis.Redis,
) -> None:
    """Store under 'myapp:1:<key>' with the block's 300 s TIMEOUT on the server."""
    from django.core.cache import cache

    cache.set("greeting", "hello")

    assert cache.get("greeting") == "hello"
    assert server_keys(redis_client, "*") == [b"myapp:1:greeting"]
    assert 295 <= redis_client.ttl("myapp:1:greeting") <= 300


@pytest.mark.usefixtures("basic_settings")
def test_basic_setup_block_applies_socket_timeouts_and_max_connections() -> None:
    """Check SOCKET_*_TIMEOUT reach the sockets and MAX_CONNECTIONS caps the pool at 50."""
    from djredis import get_redis_connection

    pool = get_redis_connection("default").connection_pool
    assert pool.connection_kwargs["retry_on_timeout"] is True
    held = [pool.get_connection() for _ in range(50)]
    try:
        sock = held[0]._sock
        assert sock is not None
        assert sock.gettimeout() == 5
        assert held[0].socket_connect_timeout == 5
        with pytest.raises(redis.ConnectionError, match="Too many connections"):
            pool.get_connection()
    finally:
        for connection in held:
            pool.release(connection)


def test_multiple_cache_block_keeps_aliases_apart_by_db_prefix_and_timeout(
    redis_server: RedisServer,
    redis_client: redis.Redis,
    use_caches: Callable[[dict[str, Any]], None],
) -> None:
    """Keep default/sessions/api_cache apart: dbs 0/1/2, their prefixes and TIMEOUTs."""
    # settings.py
    CACHES = {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": redis_server.url(0),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
            },
            "KEY_PREFIX": "default",
            "TIMEOUT": 300,
        },
        "sessions": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": redis_server.url(1),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
            },
            "KEY_PREFIX": "session",
            "TIMEOUT": 86400,  # 24 hours
        },
        "api_cache": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": redis_server.url(2),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
            },
            "KEY_PREFIX": "api",
            "TIMEOUT": 60,  # 1 minute
        },
    }
    use_caches(CACHES)

    for alias in ("default", "sessions", "api_cache"):
        caches[alias].set("shared-name", alias)

    expected = {0: ("default", 300), 1: ("session", 86400), 2: ("api", 60)}
    for db, (prefix, timeout) in expected.items():
        server = redis_server.client(db)
        assert server_keys(server, "*") == [f"{prefix}:1:shared-name".encode()]
        assert timeout - 5 <= server.ttl(f"{prefix}:1:shared-name") <= timeout
        server.close()
    assert [caches[a].get("shared-name") for a in ("default", "sessions", "api_cache")] == [
        "default",
        "sessions",
        "api_cache",
    ]


def test_cluster_block_uses_blocking_pool_for_primary_and_replicas(
    redis_server: RedisServer,
    redis_client: redis.Redis,
    use_caches: Callable[[dict[str, Any]], None],
) -> None:
    """Serve a list LOCATION (primary + replicas), every server on BlockingConnectionPool."""
    from djredis import get_redis_connection

    # settings.py
    CACHES = {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": [
                redis_server.url(0),
                redis_server.url(0),
                redis_server.url(0),
            ],
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "CONNECTION_POOL_CLASS": "redis.connection.BlockingConnectionPool",
            },
        }
    }
    use_caches(CACHES)
    from django.core.cache import cache

    cache.set("k", {"v": 1})

    assert cache.get("k") == {"v": 1}
    assert cache.get_many(["k"]) == {"k": {"v": 1}}
    assert 295 <= redis_client.ttl(":1:k") <= 300  # Django's default TIMEOUT
    for write in (True, False):
        assert isinstance(
            get_redis_connection("default", write=write).connection_pool,
            redis.BlockingConnectionPool,
        )


def test_2013_guide_socket_path_location_talks_over_the_unix_socket(
    redis_unix_server: RedisServer, use_caches: Callable[[dict[str, Any]], None]
) -> None:
    """Store keys over the Unix socket when LOCATION is a bare socket path (2013 guide)."""
    from djredis import get_redis_connection

    assert redis_unix_server.socket_path is not None
    server = redis_unix_server.client()
    server.flushall()
    CACHES = {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": redis_unix_server.socket_path,
        },
    }
    use_caches(CACHES)
    from django.core.cache import cache

    cache.set("a-unique-key", "over the socket")

    assert cache.get("a-unique-key") == "over the socket"
    assert server_keys(server, "*") == [b":1:a-unique-key"]
    connection_class = get_redis_connection().connection_pool.connection_class
    assert connection_class is redis.UnixDomainSocketConnection
    server.close()


def test_third_guide_block_uses_database_1(
    redis_server: RedisServer,
    redis_client: redis.Redis,
    use_caches: Callable[[dict[str, Any]], None],
) -> None:
    """Store in db 1, and nowhere else, with 'redis://127.0.0.1:<port>/1' + DefaultClient."""
    CACHES = {
        "default": {
            "BACKEND": "djredis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{redis_server.port}/1",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
            },
        }
    }
    use_caches(CACHES)
    from django.core.cache import cache

    cache.set("my_key", "my_value", timeout=60 * 5)

    db1 = redis_server.client(1)
    assert server_keys(db1, "*") == [b":1:my_key"]
    assert server_keys(redis_client, "*") == []
    db1.close()


# -- the low-level cache API -------------------------------------------------------------


@pytest.mark.usefixtures("basic_settings")
def test_first_guide_basic_cache_operations(
    redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run "Basic Cache Operations" and get what the guide's comments promise at each step."""
    from django.core.cache import cache

    # Set a value
    cache.set("my_key", "my_value", timeout=300)  # 5 minutes
    assert 295 <= redis_client.ttl("myapp:1:my_key") <= 300

    # Get a value
    value = cache.get("my_key")
    assert value == "my_value"

    # Get with default
    value = cache.get("my_key", default="default_value")
    assert value == "my_value"
    assert cache.get("missing_key", default="default_value") == "default_value"

    # Delete
    cache.delete("my_key")
    assert redis_client.exists("myapp:1:my_key") == 0

    # Check existence
    if cache.has_key("my_key"):
        print("Key exists")
    assert capsys.readouterr().out == ""
    cache.set("my_key", "back")
    if cache.has_key("my_key"):
        print("Key exists")
    assert capsys.readouterr().out == "Key exists\n"

    # Set multiple values
    cache.set_many({"key1": "value1", "key2": "value2"}, timeout=300)
    assert 295 <= redis_client.ttl("myapp:1:key2") <= 300

    # Get multiple values
    values = cache.get_many(["key1", "key2"])
    assert values == {"key1": "value1", "key2": "value2"}

    # Delete multiple
    cache.delete_many(["key1", "key2"])
    assert cache.get_many(["key1", "key2"]) == {}

    # Increment/decrement
    cache.set("counter", 0)
    assert cache.incr("counter") == 1
    assert cache.decr("counter") == 0
    assert cache.get("counter") == 0

    # Add (only if not exists)
    assert cache.add("new_key", "value", timeout=300) is True
    assert cache.add("new_key", "other", timeout=300) is False
    assert cache.get("new_key") == "value"

    # Get or set pattern
    computed: list[int] = []

    def compute_data() -> dict[str, int]:
        computed.append(1)
        return {"answer": 42}

    def get_expensive_data() -> dict[str, int]:
        # Expensive computation
        return compute_data()

    value = cache.get_or_set("expensive_key", get_expensive_data, timeout=3600)
    assert value == {"answer": 42}
    value = cache.get_or_set("expensive_key", get_expensive_data, timeout=3600)
    assert value == {"answer": 42}
    assert len(computed) == 1
    assert 3595 <= redis_client.ttl("myapp:1:expensive_key") <= 3600


def test_2013_guide_cache_functions_round_trip_complex_types(
    django_caches: Any, redis_client: redis.Redis
) -> None:
    """Round-trip set/get, defaults, set_many/get_many and a dict of mixed types unchanged."""
    # Start by importing your default cache:
    from django.core.cache import cache

    # Store data under a-unique-key:
    cache.set("a-unique-key", "this is a string which will be cached")

    # Later on you can retrieve it in another function:
    assert cache.get("a-unique-key") == "this is a string which will be cached"
    assert cache.get("never-set-key") is None  # Will return None if key is not found in cache

    # You can specify a default value:
    assert cache.get("another-unique-key", "default value") == "default value"

    # You can store multiple values at once:
    cache.set_many({"a": 1, "b": 2, "c": 3})

    # And fetch multiple values:
    assert cache.get_many(["a", "b", "c"]) == {"a": 1, "b": 2, "c": 3}  # returns {'a': 1, ...}

    # You can store complex types in the cache:
    complex_value = {
        "string": "this is a string",
        "int": 42,
        "list": [1, 2, 3, 4],
        "tuple": (1, 2, 3, 4),
        "dict": {"A": 1, "B": 2},
    }
    cache.set("a-unique-key", complex_value)

    got = cache.get("a-unique-key")
    assert got == complex_value
    assert isinstance(got["tuple"], tuple)
    # "Complex values will be serialized and stored under a single key."
    assert server_keys(redis_client, "*a-unique-key") == [b":1:a-unique-key"]
    assert redis_client.type(":1:a-unique-key") == b"string"


def test_third_guide_low_level_api(django_caches: Any, redis_client: redis.Redis) -> None:
    """Run the third guide's set (5-minute timeout), get, get with a default and delete."""
    from django.core.cache import cache

    # Set a value in the cache
    cache.set("my_key", "my_value", timeout=60 * 5)  # Expires in 5 minutes
    assert 295 <= redis_client.ttl(":1:my_key") <= 300

    # Get a value from the cache
    value = cache.get("my_key")
    assert value == "my_value"

    # Get a value with a default if it doesn't exist
    default_value = "default"
    value = cache.get("non_existent_key", default=default_value)
    assert value == "default"

    # Delete a value from the cache
    cache.delete("my_key")
    assert cache.get("my_key") is None
    assert redis_client.exists(":1:my_key") == 0


# -- cached views ------------------------------------------------------------------------


@pytest.mark.usefixtures("guide_site")
def test_cache_page_serves_the_second_request_from_redis(redis_client: redis.Redis) -> None:
    """Serve the second GET of a @cache_page(60 * 15) view from Redis (entry lives 900 s)."""
    client = Client()

    first = client.get("/my-view/")
    second = client.get("/my-view/")

    assert first.status_code == second.status_code == 200
    assert rendered(second) == rendered(first)
    assert "max-age=900" in first["Cache-Control"]
    pages = server_keys(redis_client, "*views.decorators.cache.cache_page*")
    headers = server_keys(redis_client, "*views.decorators.cache.cache_header*")
    assert len(pages) == len(headers) == 1
    assert 890 <= redis_client.ttl(pages[0]) <= 900


@pytest.mark.usefixtures("guide_site")
def test_cache_page_renders_again_once_redis_drops_the_entry(redis_client: redis.Redis) -> None:
    """Render the view again once Redis no longer has the cached page."""
    client = Client()
    first = rendered(client.get("/my-view/"))
    redis_client.delete(*server_keys(redis_client, "*views.decorators.cache.cache_page*"))

    assert rendered(client.get("/my-view/")) > first


@pytest.mark.usefixtures("guide_site")
def test_cache_page_with_private_cache_control_is_never_stored_server_side(
    redis_client: redis.Redis,
) -> None:
    """Show @cache_page over @cache_control(private=True) never stores the page in Redis.

    Django's cache middleware returns ``Cache-Control: private`` responses untouched: not
    stored, and not even given the max-age/Expires headers. Every request runs the view.
    """
    client = Client()

    first = client.get("/user-specific/")
    second = client.get("/user-specific/")

    assert first["Cache-Control"] == "private"
    assert not first.has_header("Expires")
    assert rendered(second) > rendered(first)
    assert server_keys(redis_client, "*cache_page*") == []


@pytest.mark.usefixtures("guide_site")
def test_method_decorator_caches_class_based_view(redis_client: redis.Redis) -> None:
    """Cache a View subclass with @method_decorator(cache_page(60 * 15), name='dispatch')."""
    client = Client()

    first = client.get("/class-view/")
    second = client.get("/class-view/")

    assert rendered(second) == rendered(first)
    assert "max-age=900" in second["Cache-Control"]
    (page,) = server_keys(redis_client, "*views.decorators.cache.cache_page*")
    assert 890 <= redis_client.ttl(page) <= 900


@pytest.mark.usefixtures("guide_site")
def test_third_guide_cache_page_view_body_runs_once() -> None:
    """Run the third guide's HttpResponse view once for two GETs with the same body."""
    views.CALLS["plain_view"] = 0
    client = Client()

    responses = [client.get("/plain/") for _ in range(2)]

    assert [r.content for r in responses] == [b"This content is cached!"] * 2
    assert views.CALLS["plain_view"] == 1


def test_vary_on_cookie_outside_cache_page_shares_one_cached_page_between_users(
    user_site: Callable[[str], Client],
) -> None:
    """Show the guide's order (@vary_on_cookie above @cache_page) shares one page per URL.

    ``cache_page`` stores the response before ``vary_on_cookie`` adds ``Vary: Cookie``, so
    the key ignores the session cookie and Bob is served the page rendered for Alice. The
    response still says ``Vary: Cookie``, which hides the problem from a quick look.
    """
    alice, bob = user_site("alice"), user_site("bob")

    alice_page = alice.get("/user/")
    bob_page = bob.get("/user/")

    assert "Cookie" in alice_page["Vary"]
    assert "Hello alice" in alice_page.content.decode()
    assert "Hello alice" in bob_page.content.decode()
    assert rendered(bob_page) == rendered(alice_page)


def test_vary_on_cookie_inside_cache_page_caches_one_page_per_cookie(
    user_site: Callable[[str], Client], redis_client: redis.Redis
) -> None:
    """Cache one page per cookie, and keep it, with @cache_page above @vary_on_cookie."""
    alice, bob = user_site("alice"), user_site("bob")

    alice_first = alice.get("/user-vary-inside/")
    bob_first = bob.get("/user-vary-inside/")
    alice_again = alice.get("/user-vary-inside/")
    bob_again = bob.get("/user-vary-inside/")

    assert "Hello alice" in alice_first.content.decode()
    assert "Hello bob" in bob_first.content.decode()
    assert rendered(alice_first) != rendered(bob_first)
    assert rendered(alice_again) == rendered(alice_first)
    assert rendered(bob_again) == rendered(bob_first)
    assert len(server_keys(redis_client, "*views.decorators.cache.cache_page*")) == 2


@pytest.mark.usefixtures("guide_site")
def test_site_wide_cache_middleware_caches_undecorated_views(
    settings: Any, redis_client: redis.Redis
) -> None:
    """Cache every GET (600 s) with the 2013 guide's Update/FetchFromCacheMiddleware pair."""
    settings.MIDDLEWARE = [
        "django.middleware.cache.UpdateCacheMiddleware",  # This must be first on the list
        "django.middleware.common.CommonMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.cache.FetchFromCacheMiddleware",  # This must be last
    ]
    client = Client()

    first = client.get("/site-page/")
    second = client.get("/site-page/")
    other = client.get("/site-page/", {"page": 2})

    assert rendered(second) == rendered(first)
    assert rendered(other) > rendered(first)  # another URL, another cache entry
    assert "max-age=600" in first["Cache-Control"]  # CACHE_MIDDLEWARE_SECONDS
    pages = server_keys(redis_client, "*views.decorators.cache.cache_page*")
    assert len(pages) == 2
    assert all(590 <= redis_client.ttl(page) <= 600 for page in pages)


@pytest.mark.usefixtures("guide_site")
def test_site_wide_cache_middleware_skips_posts(settings: Any, redis_client: redis.Redis) -> None:
    """Let a POST always reach the view through the site-wide cache middleware."""
    settings.MIDDLEWARE = [
        "django.middleware.cache.UpdateCacheMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.cache.FetchFromCacheMiddleware",
    ]
    client = Client()

    first = client.post("/site-page/")
    second = client.post("/site-page/")

    assert rendered(second) > rendered(first)
    assert server_keys(redis_client, "*cache_page*") == []


# -- the memoizing decorator -------------------------------------------------------------


@pytest.mark.django_db
def test_cached_function_queries_the_database_once_per_argument_set(
    django_caches: Any,
    redis_client: redis.Redis,
    django_assert_num_queries: Any,
) -> None:
    """Query the DB once per (args, kwargs) through cached_function; keep the User 300 s."""
    from django.contrib.auth.models import User

    from tests.guide_app.cached import expensive_query, generate_cache_key

    user = User.objects.create_user("ada", email="ada@example.com")

    with django_assert_num_queries(1):
        first = expensive_query(user.id)
    with django_assert_num_queries(0):
        again = expensive_query(user.id)
    with django_assert_num_queries(1):
        detailed = expensive_query(user.id, include_details=True)

    assert first == again == detailed == user
    assert again.email == "ada@example.com"
    key = f":1:func:expensive_query:{generate_cache_key(user.id)}"
    assert len(generate_cache_key(user.id)) == 32  # an md5 hex digest
    assert len(server_keys(redis_client, "*func:expensive_query:*")) == 2
    assert 295 <= redis_client.ttl(key) <= 300


# -- template fragment caching -----------------------------------------------------------


@pytest.fixture
def sidebar_items() -> Iterator[list[Any]]:
    """Let a test change the sidebar items; restore them afterwards."""
    saved = list(views.SIDEBAR_ITEMS)
    yield views.SIDEBAR_ITEMS
    views.SIDEBAR_ITEMS[:] = saved


@pytest.mark.usefixtures("guide_site")
def test_fragment_cache_keeps_sidebar_until_its_key_is_deleted(
    redis_client: redis.Redis, sidebar_items: list[Any]
) -> None:
    """Keep {% cache 500 sidebar %} until make_template_fragment_key's key is deleted."""
    from types import SimpleNamespace

    from django.core.cache import cache
    from django.core.cache.utils import make_template_fragment_key

    client = Client()
    first = client.get("/fragments/").content.decode()
    sidebar_items[:] = [SimpleNamespace(name="Changed")]
    second = client.get("/fragments/").content.decode()

    assert "News" in first
    assert "News" in second  # the fragment came from Redis
    assert "Changed" not in second
    assert rendered_page(second) > rendered_page(first)  # the page around it did not
    key = make_template_fragment_key("sidebar")
    assert 490 <= redis_client.ttl(f":1:{key}") <= 500

    cache.delete(key)

    third = client.get("/fragments/").content.decode()
    assert "Changed" in third
    assert "News" not in third


def rendered_page(html: str) -> int:
    """Return the number in 'page #N' (the uncached part of fragments.html)."""
    match = re.search(r"page #(\d+)", html)
    assert match, html
    return int(match.group(1))


@pytest.mark.usefixtures("guide_site")
def test_fragment_cache_with_user_id_keeps_one_fragment_per_user() -> None:
    """Keep one {% cache 500 user_sidebar user.id %} entry per user; delete one alone."""
    from django.core.cache import cache
    from django.core.cache.utils import make_template_fragment_key

    client = Client()
    saved = {uid: profile.profile for uid, profile in views.PROFILES.items()}
    try:
        assert "Profile of Ada" in client.get("/fragments/", {"user": 1}).content.decode()
        assert "Profile of Grace" in client.get("/fragments/", {"user": 2}).content.decode()
        views.PROFILES[1].profile = "Ada, edited"
        views.PROFILES[2].profile = "Grace, edited"
        assert "Profile of Ada" in client.get("/fragments/", {"user": 1}).content.decode()

        cache.delete(make_template_fragment_key("user_sidebar", [1]))

        assert "Ada, edited" in client.get("/fragments/", {"user": 1}).content.decode()
        assert "Profile of Grace" in client.get("/fragments/", {"user": 2}).content.decode()
    finally:
        for uid, text in saved.items():
            views.PROFILES[uid].profile = text


@pytest.mark.usefixtures("guide_site")
def test_fragment_cache_per_language_keeps_one_navigation_per_language(
    settings: Any, redis_client: redis.Redis
) -> None:
    """Keep one {% cache 500 nav request.LANGUAGE_CODE %} navigation per language."""
    from django.core.cache.utils import make_template_fragment_key

    settings.LANGUAGES = [("en", "English"), ("fr", "French")]
    settings.MIDDLEWARE = ["django.middleware.locale.LocaleMiddleware"]
    client = Client()

    def navigation(language: str) -> str:
        html = client.get("/fragments/", headers={"accept-language": language}).content.decode()
        match = re.search(r"<nav>(.*?)</nav>", html)
        assert match, html
        return match.group(1)

    english = navigation("en")
    french = navigation("fr")

    assert english.endswith("in en")
    assert french.endswith("in fr")
    assert english != french
    assert navigation("en") == english
    assert navigation("fr") == french
    for language in ("en", "fr"):
        assert redis_client.exists(f":1:{make_template_fragment_key('nav', [language])}")


def test_third_guide_fragment_per_request_user(user_site: Callable[[str], Client]) -> None:
    """Cache {% cache 500 sidebar request.user.id %} per user while the page stays dynamic."""
    alice, bob = user_site("alice"), user_site("bob")

    def fragment(html: str) -> str:
        match = re.search(r'<ul class="sidebar">(.*?)</ul>', html)
        assert match, html
        return match.group(1)

    alice_first = alice.get("/user-fragment/").content.decode()
    alice_again = alice.get("/user-fragment/").content.decode()
    bob_first = bob.get("/user-fragment/").content.decode()

    assert fragment(alice_again) == fragment(alice_first)
    assert "for alice" in fragment(alice_first)
    assert "for bob" in fragment(bob_first)
    assert alice_again != alice_first  # "This part is always dynamic"


# -- direct Redis access -----------------------------------------------------------------


def test_direct_redis_operations_through_get_redis_connection(
    django_caches: Any, redis_client: redis.Redis
) -> None:
    """Reach the cache's server with strings, a pipeline, pub/sub, a hash and a sorted set."""
    from djredis import get_redis_connection

    redis_conn = get_redis_connection("default")

    # String operations
    redis_conn.set("direct_key", "value")
    value = redis_conn.get("direct_key")
    assert value == b"value"
    assert redis_client.get("direct_key") == b"value"  # raw key: no cache prefix

    # Pipeline for batch operations
    pipe = redis_conn.pipeline()
    pipe.set("key1", "value1")
    pipe.set("key2", "value2")
    pipe.incr("counter")
    results = pipe.execute()
    assert results == [True, True, 1]
    assert redis_client.mget("key1", "key2", "counter") == [b"value1", b"value2", b"1"]

    # Pub/Sub
    pubsub = redis_conn.pubsub()
    pubsub.subscribe("channel")
    confirmation = pubsub.get_message(timeout=5)
    assert confirmation is not None
    assert confirmation["type"] == "subscribe"

    # Publish message
    assert redis_conn.publish("channel", "message") == 1  # one subscriber received it
    received = pubsub.get_message(timeout=5)
    assert received is not None
    assert (received["type"], received["channel"], received["data"]) == (
        "message",
        b"channel",
        b"message",
    )
    pubsub.close()

    # Hash operations
    redis_conn.hset("user:1", mapping={"name": "John", "email": "john@example.com"})
    user = redis_conn.hgetall("user:1")
    assert user == {b"name": b"John", b"email": b"john@example.com"}

    # Sorted sets
    redis_conn.zadd("leaderboard", {"player1": 100, "player2": 200})
    top_players = redis_conn.zrevrange("leaderboard", 0, 10, withscores=True)
    assert top_players == [(b"player2", 200.0), (b"player1", 100.0)]


@pytest.mark.usefixtures("basic_settings")
def test_cache_client_get_client_lock_scan_ttl_and_setnx(
    redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    """Use cache.client.get_client(): lock, scan_iter on 'myapp:*', ttl/expire and setnx.

    The raw client does not add the cache's prefix: ``client.ttl('my_key')`` asks about the
    Redis key ``my_key``, not the cache key ``my_key`` (stored as ``myapp:1:my_key``).
    """
    from django.core.cache import cache

    cache.set("my_key", "cached")

    # Access underlying Redis client
    client = cache.client.get_client()

    # Lock pattern
    lock = client.lock("my_lock", timeout=10)
    if lock.acquire(blocking=False):
        try:
            # Do exclusive work
            assert not client.lock("my_lock", timeout=10).acquire(blocking=False)
            assert 0 < redis_client.pttl("my_lock") <= 10_000
        finally:
            lock.release()
    else:
        pytest.fail("the lock was free and should have been acquired")
    assert redis_client.exists("my_lock") == 0

    # Scan keys
    for key in client.scan_iter(match="myapp:*"):
        print(key)
    assert capsys.readouterr().out == "b'myapp:1:my_key'\n"

    # TTL operations
    ttl = client.ttl("my_key")
    assert ttl == -2  # no Redis key named 'my_key': the cache key is 'myapp:1:my_key'
    assert client.expire("my_key", 3600) is False
    full_key = cache.make_key("my_key")
    assert 295 <= client.ttl(full_key) <= 300
    assert client.expire(full_key, 3600) is True
    assert 3595 <= cache.ttl("my_key") <= 3600  # djredis's cache.ttl applies the prefix

    # Atomic operations
    assert client.setnx("unique_key", "value") is True
    assert client.setnx("unique_key", "other") is False
    assert redis_client.get("unique_key") == b"value"


def test_third_guide_pub_sub_delivers_to_a_subscriber(django_caches: Any) -> None:
    """Deliver the publisher's message to a subscriber of 'my_channel'."""
    from djredis import get_redis_connection

    redis_client = get_redis_connection("default")
    # Subscriber (simplified)
    ps = redis_client.pubsub()
    ps.subscribe("my_channel")
    assert ps.get_message(timeout=5) is not None  # the subscribe confirmation

    # Publisher
    redis_client.publish("my_channel", "Hello from publisher!")

    received = []
    for message in ps.listen():
        if message["type"] == "message":
            received.append(message["data"])
            break
    ps.close()
    assert received == [b"Hello from publisher!"]


def test_third_guide_leaderboard_returns_top_users_by_score(django_caches: Any) -> None:
    """Get exactly the guide's example result from zadd + zrevrange(0, 9, withscores=True)."""
    from djredis import get_redis_connection

    r = get_redis_connection("default")

    # Add a user score
    r.zadd("leaderboard", {"user1": 100, "user2": 250})

    # Get top 10 users
    top_users = r.zrevrange("leaderboard", 0, 9, withscores=True)
    # Result might be: [(b'user2', 250.0), (b'user1', 100.0)]
    assert top_users == [(b"user2", 250.0), (b"user1", 100.0)]

    r.zadd("leaderboard", {f"user{n}": n for n in range(3, 20)})
    top_ten = r.zrevrange("leaderboard", 0, 9, withscores=True)
    assert [name for name, _ in top_ten[:3]] == [b"user2", b"user1", b"user19"]
    assert len(top_ten) == 10
