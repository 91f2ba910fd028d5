"""Every page of the reference site over HTTP, against its real Redis: what each page says
and what it leaves in Redis.

The site runs under uvicorn (tests/site/conftest.py); ``Visitor`` is one cookie jar, so
two visitors are two browsers. Redis is read directly to check what the pages claim.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from html import unescape

import pytest

from tests._servers import RedisServer

from ._example import ExampleSite, Visitor, celery_broker_problem

PAGES = [
    "/", "/caches/", "/cache-page/", "/cache-class/", "/fragment/", "/fragment/?lang=fr",
    "/counter/", "/api-tour/", "/articles/", "/async/", "/login/", "/leaderboard/",
    "/notifications/", "/lock/", "/tasks/", "/dashboard/", "/memoize/", "/per-user/",
    "/ratelimit/", "/django-tasks/",
]  # fmt: skip
LOGIN_ONLY = ["/account/sessions/", "/account/profile/"]


def text_of(html: str, element_id: str) -> str:
    """Return the text inside the element with ``id`` (tags removed)."""
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert match, f"no #{element_id} in the page"
    return unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


@pytest.mark.parametrize("path", PAGES)
def test_page_answers_and_shows_its_code(site: str, path: str) -> None:
    """Answer 200 with the page's own code (or the home page's list of demos)."""
    reply = Visitor(site).get(path)
    assert reply.status == 200, reply.text[-2000:]
    assert 'id="page-code"' in reply.text or 'id="demos"' in reply.text or path == "/login/"


def test_every_link_on_the_home_page_opens(site: str) -> None:
    """Follow each demo link of the home page; none is broken."""
    visitor = Visitor(site)
    visitor.log_in()
    links = re.findall(r'<li><a href="([^"]+)"', visitor.get("/").text)
    assert len(links) >= 20
    for link in links:
        assert visitor.get(link).status == 200, link


@pytest.mark.parametrize("path", LOGIN_ONLY)
def test_account_pages_send_anonymous_visitors_to_the_login(site: str, path: str) -> None:
    """Redirect to the login form, then back after logging in."""
    reply = Visitor(site).get(path, follow=False)
    assert reply.status == 302
    assert reply.headers["location"] == f"/login/?next={path}"


@pytest.mark.parametrize("path", ["/cache-page/", "/cache-class/"])
def test_cached_pages_tell_the_browser_not_to_reuse_them(site: str, path: str) -> None:
    """Miss then hit in Redis, while the browser is never allowed to answer by itself."""
    url = f"{path}?visit={uuid.uuid4().hex}"
    visitor = Visitor(site)
    first, second = visitor.get(url), visitor.get(url)

    assert text_of(first.text, "source") == "Freshly rendered (cache miss)"
    assert text_of(second.text, "source") == "Served from cache"
    assert text_of(second.text, "rendered-at") == text_of(first.text, "rendered-at")
    for reply in (first, second):
        control = reply.headers["cache-control"]
        assert "max-age=0" in control
        assert "no-cache" in control
        assert "no-store" in control


def test_cached_page_lives_in_redis_with_cache_page_timeout(
    site: str, example_redis: RedisServer
) -> None:
    """Store cache_page's response under the default alias's KEY_PREFIX, for 30 s."""
    url = f"/cache-page/?visit={uuid.uuid4().hex}"
    Visitor(site).get(url)
    client = example_redis.client(0)
    keys = list(client.scan_iter(match="example:*views.decorators.cache.cache_page*"))
    ttls = [client.ttl(k) for k in keys]
    assert keys
    assert all(0 < ttl <= 30 for ttl in ttls), ttls


def test_caches_page_writes_each_alias_to_its_own_database(
    site: str, example_redis: RedisServer
) -> None:
    """default, sessions and api_cache land on databases 0, 1 and 2, with their prefixes."""
    Visitor(site).get("/caches/")
    expected = {0: ("example:1:probe", 300), 1: ("session:1:probe", 86400), 2: ("api:1:probe", 60)}
    for db, (key, timeout) in expected.items():
        client = example_redis.client(db)
        assert client.exists(key) == 1, (db, key)
        assert 0 < client.ttl(key) <= timeout
        others = {k: v for k, v in expected.items() if k != db}
        assert not any(client.exists(other_key) for other_key, _ in others.values())


def test_negative_score_gets_a_friendly_error_and_is_not_stored(
    site: str, example_redis: RedisServer
) -> None:
    """Say what a score may be; store nothing; no raw error list."""
    name = f"neg-{uuid.uuid4().hex[:6]}"
    reply = Visitor(site).post("/leaderboard/", {"name": name, "score": "-1"})

    assert reply.status == 200
    assert text_of(reply.text, "form-errors") == (
        "A score cannot be negative: enter a whole number from 0 to 1,000,000."
    )
    assert 'class="errorlist"' not in reply.text
    assert example_redis.client(0).zscore("example:leaderboard", name) is None


def test_score_is_published_for_live_pages(site: str, example_redis: RedisServer) -> None:
    """Adding a score publishes it on the notifications channel."""
    pubsub = example_redis.client(0).pubsub()
    pubsub.subscribe("example:notifications")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    name = f"pub-{uuid.uuid4().hex[:6]}"
    Visitor(site).post("/leaderboard/", {"name": name, "score": "7"})

    message = pubsub.get_message(timeout=5)
    pubsub.close()
    assert message is not None
    assert json.loads(message["data"]) == {"kind": "score", "text": f"{name}: 7"}


def test_editing_an_article_invalidates_the_cached_list(site: str) -> None:
    """A save deletes the cached list (post_save): the next list shows the new title."""
    visitor = Visitor(site)
    visitor.get("/articles/")
    assert text_of(visitor.get("/articles/").text, "list-source") == "List served from cache"
    title = f"Edited {uuid.uuid4().hex[:6]}"

    reply = visitor.post("/articles/1/edit/", {"title": title, "body": "new"})

    assert reply.url.endswith("/articles/")
    assert text_of(reply.text, "list-source") == "List read from the database (cache miss)"
    assert title in reply.text


def test_async_view_builds_missing_items_concurrently_then_serves_them(site: str) -> None:
    """Five 0.2 s items built at once on the event loop; the next visit gets all five."""
    visitor = Visitor(site)
    assert visitor.post("/async/clear/", {}, follow=False).status == 302
    first = visitor.get("/async/")
    second = visitor.get("/async/")

    assert text_of(first.text, "async-status") == "0 from Redis, 5 built"
    assert text_of(second.text, "async-status") == "5 from Redis, 0 built"
    assert text_of(first.text, "thread") == "MainThread"  # ran on the loop, not a thread pool
    assert int(text_of(second.text, "visits")) == int(text_of(first.text, "visits")) + 1


def test_lock_runs_one_of_concurrent_requests(site: str, example_redis: RedisServer) -> None:
    """Eight concurrent POSTs: exactly one builds the report; the counter grows by one."""
    visitor = Visitor(site)
    visitor.get("/lock/")
    token = next(c.value for c in visitor.cookies if c.name == "csrftoken")
    before = int(example_redis.client(0).get("example:reports") or 0)
    barrier = threading.Barrier(8)

    def run(_: int) -> dict[str, object]:
        request = urllib.request.Request(
            site + "/lock/run/", data=b"", headers={"X-CSRFToken": token}, method="POST"
        )
        barrier.wait()
        with visitor.opener.open(request, timeout=15) as response:
            reply: dict[str, object] = json.load(response)
            return reply

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(run, range(8)))

    assert sum(1 for reply in replies if reply["ran"]) == 1
    assert int(example_redis.client(0).get("example:reports") or 0) == before + 1
    assert example_redis.client(0).exists("example:lock:report") == 0  # released


def test_profile_is_a_redis_hash(site: str, example_redis: RedisServer) -> None:
    """Save the profile form into example:profile:<user id>; show what HGETALL returns."""
    visitor = Visitor(site)
    visitor.log_in()
    reply = visitor.post(
        "/account/profile/", {"display_name": "Ada L.", "city": "London", "theme": "dark"}
    )

    stored = example_redis.client(0).hgetall("example:profile:1")
    assert stored == {b"display_name": b"Ada L.", b"city": b"London", b"theme": b"dark"}
    assert '<td class="value-city">London</td>' in reply.text


def test_sessions_page_lists_devices_and_logs_out_everywhere_else(
    site: str, example_redis: RedisServer
) -> None:
    """List each login with its device and IP; 'everywhere else' keeps only this one."""
    laptop = Visitor(site, "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36")
    phone = Visitor(site, "Mozilla/5.0 (Android 14) Firefox/130.0")
    laptop.log_in()
    phone.log_in()

    page = laptop.get("/account/sessions/").text
    assert "Chrome on Linux" in page
    assert "Firefox on Android" in page
    assert "127.0.0.1" in page

    reply = laptop.post("/account/sessions/", {"action": "others"})
    assert reply.text.count('class="session') == 1
    assert "(this browser)" in reply.text
    assert phone.get("/account/sessions/", follow=False).status == 302  # logged out
    assert laptop.get("/account/sessions/", follow=False).status == 200


def test_sessions_are_stored_by_djredis_sessions_in_the_sessions_database(
    site: str, example_redis: RedisServer
) -> None:
    """A login writes session:<key> and the user index session:user=1 in database 1."""
    visitor = Visitor(site)
    visitor.log_in()
    session_key = next(c.value for c in visitor.cookies if c.name == "sessionid")
    client = example_redis.client(1)

    assert client.type(f"session:{session_key}") == b"hash"
    assert client.zscore("session:user=1", session_key) is not None
    assert example_redis.client(0).exists(f"session:{session_key}") == 0


def test_notifications_stream_forwards_published_messages(
    example_site: ExampleSite, example_redis: RedisServer
) -> None:
    """The event stream carries a message published after it subscribed."""
    with urllib.request.urlopen(example_site.base + "/notifications/stream/", timeout=10) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert stream.readline() == b"retry: 1000\n"
        assert stream.readline() == b": subscribed\n"
        example_redis.client(0).publish("example:notifications", '{"kind": "message"}')
        lines = []
        while not lines or not lines[-1].startswith(b"data:"):
            lines.append(stream.readline())
    assert lines[-1] == b'data: {"kind": "message"}\n'


def test_dashboard_counts_the_reads_a_page_made(site: str) -> None:
    """The api-tour page reads 4 hits and 2 misses through 'default'; the dashboard adds them."""
    visitor = Visitor(site)

    def default_counts() -> tuple[int, int]:
        data = json.loads(visitor.get("/dashboard/data.json").text)
        row = next(a for a in data["aliases"] if a["alias"] == "default")
        return row["hits"], row["misses"]

    hits, misses = default_counts()
    visitor.get("/api-tour/")
    assert default_counts() == (hits + 4, misses + 2)


def test_dashboard_shows_every_alias_with_its_server(example_site: ExampleSite) -> None:
    """One row per alias; each server reachable, with keys per db and the Celery queue."""
    data = json.loads(Visitor(example_site.base).get("/dashboard/data.json").text)
    assert [a["alias"] for a in data["aliases"]] == ["default", "sessions", "api_cache"]
    for row in data["aliases"]:
        assert row["reachable"]
        assert row["latency_ms"] > 0
        assert (row["near"] is not None) == (row["alias"] == "default")  # NEAR_CACHE on default
    if celery_broker_problem(example_site.redis_server.url(3)) is None:
        assert isinstance(data["celery_queue"], int)
    else:  # kombu refuses this redis-py: no queue to measure
        assert data["celery_queue"] is None


def test_health_check_answers_ok_with_latencies(site: str) -> None:
    """/health/ is djredis.health.health: 200 and each alias reachable."""
    reply = Visitor(site).get("/health/")
    body = json.loads(reply.text)
    assert reply.status == 200
    assert body["status"] == "ok"
    assert {s["alias"] for s in body["servers"]} == {"default", "sessions", "api_cache"}


def test_api_answers_429_with_retry_after_and_ratelimit_fields_past_its_limit(site: str) -> None:
    """At most 10 calls a minute per IP; the refusal says when to come back."""
    visitor = Visitor(site)
    replies = []
    for _ in range(12):
        replies.append(visitor.get("/api/hello/"))
        if replies[-1].status == 429:
            break
    refused = replies[-1]
    assert refused.status == 429
    assert all(reply.status == 200 for reply in replies[:-1])
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-policy"].endswith(";q=10;w=60")
    assert ";r=0;" in refused.headers["ratelimit"]
    if len(replies) > 1:  # allowed answers carry the fields too
        assert "ratelimit" in replies[0].headers
    page = visitor.get("/ratelimit/").text
    # 0 right after the refusal (1 if the sliding window let the oldest call go meanwhile)
    assert int(text_of(page, "remaining-ip")) <= 1


def test_memoize_runs_the_function_once_for_fifty_concurrent_calls(
    site: str, example_redis: RedisServer
) -> None:
    """An expired memoized key and 50 concurrent callers: one real run, one result."""
    before = int(example_redis.client(0).get("example:memoize:runs") or 0)
    page = Visitor(site).get("/memoize/").text
    assert text_of(page, "runs") == "1"
    assert text_of(page, "distinct") == "1"
    assert int(example_redis.client(0).get("example:memoize:runs") or 0) == before + 1


def test_per_user_page_is_cached_for_each_user_and_never_shared(site: str) -> None:
    """Anonymous and logged-in visitors each get their own cached copy."""
    anonymous, member = Visitor(site), Visitor(site)
    member.log_in()
    url = f"/per-user/?visit={uuid.uuid4().hex}"
    first_anonymous, first_member = anonymous.get(url), member.get(url)
    second_anonymous, second_member = anonymous.get(url), member.get(url)

    assert text_of(first_anonymous.text, "owner") == "anonymous"
    assert text_of(first_member.text, "owner") == "demo"  # not the anonymous copy
    assert text_of(second_member.text, "owner") == "demo"
    assert text_of(second_member.text, "source") == "Served from cache"
    assert text_of(second_anonymous.text, "source") == "Served from cache"
    assert text_of(second_anonymous.text, "owner") == "anonymous"
    assert "private" in second_member.headers["cache-control"]
