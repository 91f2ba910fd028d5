"""Drive the reference site (example/) in a real headless Chromium, the way a person does:
by clicking links and buttons.

The site runs under uvicorn against a private redis-server (tests/site/conftest.py);
Playwright drives Debian's Chromium (/usr/bin/chromium). Without Chromium or the
``playwright`` package the module is skipped: CI installs both (apt: chromium; pip:
playwright — its bundled driver only, never ``playwright install``).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ._example import DEMO_LOGIN

pytestmark = pytest.mark.browser

if not Path("/usr/bin/chromium").exists():
    pytest.skip("Chromium is not installed (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install playwright)"
)
expect = sync_api.expect

SCREENSHOT = Path("/tmp/djredis-example-leaderboard.png")


def log_in(page: Any, site: str) -> None:
    """Log in as the demo user through the header link and the login form."""
    page.goto(site + "/")
    page.locator("#account").get_by_role("link", name="Log in").click()
    page.get_by_label("Username").fill(DEMO_LOGIN[0])
    page.get_by_label("Password").fill(DEMO_LOGIN[1])
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#account")).to_contain_text(f"Signed in as {DEMO_LOGIN[0]}")


def test_home_page_lists_every_demo(site: str, page: Any) -> None:
    """List the demos by section on the home page, with links that open them."""
    page.goto(site + "/")

    expect(page.locator("#demos h2")).to_have_text(
        [
            "Caching",
            "Sessions",
            "Redis structures",
            "Rate limiting",
            "Real time",
            "Celery",
            "Operations",
        ]
    )
    expect(page.locator("main")).to_contain_text("djredis.cache.RedisCache")
    page.get_by_role("link", name="Direct Redis access").click()
    expect(page).to_have_url(site + "/leaderboard/")
    expect(page.locator("h1")).to_contain_text("get_redis_connection")


def test_cache_page_demo_shows_a_hit_after_a_click(site: str, page: Any) -> None:
    """Serve the page from Redis when the visitor clicks the Reload link (not reload()).

    With cache_page's own ``max-age`` the browser would answer that click from its disk
    cache and the page would still say "cache miss"; the demo must reach the server.
    """
    page.goto(f"{site}/cache-page/?visit={uuid.uuid4().hex}")  # a URL nobody cached yet
    expect(page.locator("#source")).to_have_text("Freshly rendered (cache miss)")
    rendered_at = page.locator("#rendered-at").inner_text()
    now = page.locator("#now").inner_text()

    page.locator("#reload").click()
    expect(page.locator("#source")).to_have_text("Served from cache")
    expect(page.locator("#rendered-at")).to_have_text(rendered_at)
    expect(page.locator("#now")).not_to_have_text(now)  # this response is a new one


def test_cache_page_demo_is_a_hit_when_reached_again_from_the_home_page(
    site: str, page: Any, example_redis: Any
) -> None:
    """Open the demo from the home page, go home, open it again: the second is a hit."""
    for name in ["Per-view caching", "Class-based view"]:
        # Start a fresh 30 s window, so that it cannot end between the two visits.
        client = example_redis.client(0)
        for key in client.scan_iter(match="example:*views.decorators.cache.cache_*"):
            client.delete(key)
        page.goto(site + "/")
        page.get_by_role("link", name=name).click()
        expect(page.locator("#rendered-at")).to_be_visible()
        rendered_at = page.locator("#rendered-at").inner_text()
        page.get_by_role("link", name="djredis reference site").click()
        page.get_by_role("link", name=name).click()
        expect(page.locator("#source")).to_have_text("Served from cache")
        expect(page.locator("#rendered-at")).to_have_text(rendered_at)


def test_fragment_demo_keeps_fragment_until_invalidated(site: str, page: Any) -> None:
    """Keep the cached block's render time across loads until the button invalidates it."""
    page.goto(site + "/fragment/")
    page.get_by_role("button", name="Invalidate the fragment").click()
    expect(page.locator("#fragment-state")).to_contain_text("Not cached before this request")
    stamp = page.locator("#fragment-rendered-at").inner_text()

    page.locator("#languages").get_by_role("link", name="English").click()
    expect(page.locator("#fragment-state")).to_contain_text("Cached fragment: expires in")
    expect(page.locator("#fragment-rendered-at")).to_have_text(stamp)
    expect(page.locator("#fragment li")).to_have_count(4)


def test_sidebar_fragment_is_cached_per_language_and_per_user(site: str, new_page: Any) -> None:
    """Give each (user, language) its own cached sidebar; never show one user another's."""
    anonymous, member = new_page(), new_page()
    log_in(member, site)
    for page in (anonymous, member):
        page.goto(site + "/fragment/")
    expect(anonymous.locator("#sidebar-owner")).to_have_text("anonymous · en")
    expect(member.locator("#sidebar-owner")).to_have_text(f"{DEMO_LOGIN[0]} · en")

    member.locator("#languages").get_by_role("link", name="Français").click()
    expect(member.locator("#sidebar-owner")).to_have_text(f"{DEMO_LOGIN[0]} · fr")
    expect(member.locator("#sidebar")).to_contain_text("Votre barre latérale")
    expect(member.locator("#sidebar-key")).to_contain_text("user_sidebar")


def test_counter_increments_on_click_and_shows_ttl(site: str, page: Any) -> None:
    """Add one per click through cache.incr and show the key's TTL from Redis."""
    page.goto(site + "/")
    page.get_by_role("link", name="Low-level cache API").click()
    page.get_by_role("button", name="Reset").click()
    expect(page.locator("#count")).to_have_text("0")
    expect(page.locator("#ttl")).to_contain_text("No counter yet")

    page.get_by_role("button", name="Increment").click()
    expect(page.locator("#count")).to_have_text("1")
    page.get_by_role("button", name="Increment").click()
    expect(page.locator("#count")).to_have_text("2")

    ttl_text = page.locator("#ttl").inner_text()
    match = re.search(r"Expires in (\d+) s", ttl_text)
    assert match, ttl_text
    assert 0 < int(match.group(1)) <= 60


def test_leaderboard_shows_submitted_scores_in_order(site: str, page: Any) -> None:
    """Show the scores added through the form, highest first."""
    page.goto(site + "/leaderboard/")
    players = [
        (f"Ada-{uuid.uuid4().hex[:6]}", "900030"),
        (f"Grace-{uuid.uuid4().hex[:6]}", "900050"),
    ]
    for name, score in players:
        page.get_by_label("Name").fill(name)
        page.get_by_label("Score").fill(score)
        page.get_by_role("button", name="Add score").click()
        expect(page.locator("#leaderboard .name").filter(has_text=name)).to_have_count(1)

    names = page.locator("#leaderboard .name").all_inner_texts()
    assert names.index(players[1][0]) < names.index(players[0][0])
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 0


def test_leaderboard_rejects_a_negative_score_with_a_friendly_message(site: str, page: Any) -> None:
    """Say what a score may be, next to the form, instead of Django's raw error list."""
    page.goto(site + "/leaderboard/")
    page.get_by_label("Name").fill("Cheater")
    page.get_by_label("Score").fill("-5")
    page.get_by_role("button", name="Add score").click()
    expect(page.locator("#form-errors")).to_have_text(
        "A score cannot be negative: enter a whole number from 0 to 1,000,000."
    )
    expect(page.locator("#leaderboard .name").filter(has_text="Cheater")).to_have_count(0)


def test_leaderboard_updates_live_in_another_browser(site: str, new_page: Any) -> None:
    """A score added in one browser appears in another one's open table, without reload."""
    watcher, player = new_page(), new_page()
    watcher.goto(site + "/leaderboard/")
    expect(watcher.locator("#live-state")).to_have_text("Live updates: on")
    name = f"Live-{uuid.uuid4().hex[:6]}"

    player.goto(site + "/leaderboard/")
    player.get_by_label("Name").fill(name)
    player.get_by_label("Score").fill("999999")
    player.get_by_role("button", name="Add score").click()

    expect(watcher.locator("#leaderboard .name").first).to_have_text(name)
    expect(watcher.locator("#leaderboard .score").first).to_have_text("999999")


def test_notifications_reach_every_open_page_live(site: str, new_page: Any) -> None:
    """A message published from one browser shows up in another, through pub/sub."""
    reader, writer = new_page(), new_page()
    reader.goto(site + "/")
    reader.get_by_role("link", name="Live notifications").click()
    expect(reader.locator("#live-state")).to_have_text("Live updates: on")
    text = f"hello {uuid.uuid4().hex[:6]}"

    writer.goto(site + "/notifications/")
    expect(writer.locator("#live-state")).to_have_text("Live updates: on")
    writer.get_by_label("Message").fill(text)
    writer.get_by_role("button", name="Publish").click()

    expect(reader.locator("#messages li").filter(has_text=text)).to_have_count(1)
    expect(writer.locator("#receivers")).to_contain_text("subscriber")


def open_chat_room(page: Any, site: str, room: str) -> None:
    """Reach ``room`` from the home page by clicking, and wait for its WebSocket."""
    page.goto(site + "/")
    page.get_by_role("link", name="WebSocket chat").click()
    page.locator("#rooms").get_by_role("link", name=room, exact=True).click()
    expect(page).to_have_url(f"{site}/chat/{room}/")
    expect(page.locator("#chat-state")).to_have_text("Connected")


def send_chat(page: Any, text: str) -> None:
    """Type ``text`` in the chat box and send it."""
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def test_two_browsers_chat_in_real_time_and_other_rooms_stay_apart(
    site: str, new_page: Any
) -> None:
    """A message typed in one browser shows up at once in another on the same room (with the
    signed-in sender's name, from the session), and never in another room."""
    alice, bob, carol = new_page(), new_page(), new_page()
    log_in(alice, site)
    for visitor, room in ((alice, "lobby"), (bob, "lobby"), (carol, "redis")):
        open_chat_room(visitor, site, room)
    tag = uuid.uuid4().hex[:6]

    send_chat(carol, f"carol in redis {tag}")
    expect(carol.locator("#chat-log li").filter(has_text=tag)).to_have_text(
        [f"anonymous: carol in redis {tag}"]
    )
    send_chat(alice, f"hello bob {tag}")
    expect(bob.locator("#chat-log li").filter(has_text=tag)).to_have_text(
        [f"{DEMO_LOGIN[0]}: hello bob {tag}"]
    )
    send_chat(bob, f"hi alice {tag}")
    expect(alice.locator("#chat-log li").filter(has_text=tag)).to_have_text(
        [f"{DEMO_LOGIN[0]}: hello bob {tag}", f"anonymous: hi alice {tag}"]
    )
    expect(carol.locator("#chat-log li").filter(has_text=tag)).to_have_count(1)
    expect(bob.locator("#chat-log li").filter(has_text="carol")).to_have_count(0)


def test_lock_lets_one_of_five_concurrent_builds_run(site: str, page: Any) -> None:
    """Five builds started at once: exactly one holds the lock and runs."""
    page.goto(site + "/lock/")
    page.get_by_role("button", name="Start five builds at once").click()
    expect(page.locator("#results li")).to_have_count(5)
    expect(page.locator("#results li.ran")).to_have_count(1)
    expect(page.locator("#results li.busy")).to_have_count(4)


def test_log_out_another_session_from_the_sessions_page(site: str, new_page: Any) -> None:
    """Log in twice; from the first browser, log the second out; it becomes anonymous."""
    laptop, phone = new_page(), new_page()
    log_in(laptop, site)
    log_in(phone, site)

    laptop.locator("#account").get_by_role("link", name="sessions").click()
    expect(laptop.locator("#sessions tr.session.current")).to_have_count(1)
    others = laptop.locator("#sessions tr.session:not(.current)")
    assert others.count() >= 1
    phone.goto(site + "/account/sessions/")
    phone_id = phone.locator("#sessions tr.session.current").get_attribute("data-id")

    row = laptop.locator(f'#sessions tr.session[data-id="{phone_id}"]')
    expect(row.locator(".ip")).to_have_text("127.0.0.1")
    row.get_by_role("button", name="Log out this one").click()
    expect(laptop.locator(f'#sessions tr.session[data-id="{phone_id}"]')).to_have_count(0)

    phone.get_by_role("link", name="djredis reference site").click()
    expect(phone.locator("#account")).to_contain_text("Log in")
    expect(laptop.locator("#account")).to_contain_text(f"Signed in as {DEMO_LOGIN[0]}")


def test_task_started_from_the_tasks_page_shows_its_result_live(
    example_celery: Any, page: Any
) -> None:
    """Click "Process an order": the status page follows the worker until SUCCESS."""
    page.goto(example_celery.base + "/")
    page.get_by_role("link", name="Celery tasks").click()
    page.get_by_role("button", name="… that fails twice first").click()

    expect(page.locator("#task-state")).to_have_text("SUCCESS", timeout=20_000)
    expect(page.locator("#task-result")).to_contain_text("processed")
    page.get_by_role("link", name="Back to the tasks").click()
    expect(page.locator("#recent li")).to_contain_text(["process_order.delay"])


def test_django_task_enqueued_from_its_page_shows_its_task_result_live(
    example_celery: Any, page: Any
) -> None:
    """Click "Enqueue the email": the TaskResult row follows the worker to SUCCESSFUL."""
    page.goto(example_celery.base + "/")
    page.get_by_role("link", name="Django tasks on Celery").click()
    page.get_by_role("button", name="Enqueue the email").click()

    row = page.locator("#results tbody tr").first
    expect(row).to_contain_text("email_users.enqueue(...)")
    expect(row.locator(".status")).to_have_text("SUCCESSFUL", timeout=20_000)
    expect(row.locator(".return-value")).to_have_text("1")  # send_mail: one email sent
    expect(row.locator(".attempts")).to_have_text("1")
    expect(row.locator(".worker-ids")).to_contain_text("test-worker@")
    expect(row.locator(".finished-at")).not_to_have_text("")


def test_deferred_django_task_stays_ready_until_its_run_after(
    example_celery: Any, page: Any
) -> None:
    """Click "Enqueue it to run in 5 s": READY at first, SUCCESSFUL once run_after passed."""
    page.goto(example_celery.base + "/")
    page.get_by_role("link", name="Django tasks on Celery").click()
    page.get_by_role("button", name="Enqueue it to run in 5 s").click()

    row = page.locator("#results tbody tr").first
    expect(row).to_contain_text("run_after=now + 5 s")
    expect(row.locator(".status")).to_have_text("READY")
    expect(row.locator(".started-at")).to_have_text("")
    expect(row.locator(".status")).to_have_text("SUCCESSFUL", timeout=25_000)
    run_after = datetime.fromisoformat(row.locator(".run-after").inner_text())
    enqueued_at = datetime.fromisoformat(row.locator(".enqueued-at").inner_text())
    started_at = datetime.fromisoformat(row.locator(".started-at").inner_text())
    assert run_after - enqueued_at >= timedelta(seconds=4.9)
    assert started_at >= run_after


def test_dashboard_updates_live_as_pages_read_the_cache(site: str, new_page: Any) -> None:
    """Open the dashboard from the home page; reads made in another tab appear by themselves."""
    dashboard, reader = new_page(), new_page()
    dashboard.goto(site + "/")
    dashboard.get_by_role("link", name="Redis dashboard").click()
    expect(dashboard.locator("#aliases tbody tr")).to_have_count(3)
    hits = dashboard.locator("#aliases tr.alias-default td.hits")
    expect(hits).not_to_have_text("")
    before = int(hits.inner_text())

    reader.goto(site + "/api-tour/")

    expect(hits).to_have_text(str(before + 4), timeout=10_000)
    expect(dashboard.locator("#aliases tr.alias-default td.latency")).to_contain_text("ms")


def test_hammering_the_api_shows_a_429_with_its_headers(site: str, page: Any) -> None:
    """Click "Call it until it says 429": the last call is refused, with Retry-After."""
    page.goto(site + "/")
    page.get_by_role("link", name="A rate-limited JSON API").click()
    page.get_by_role("button", name="Call it until it says 429").click()

    refused = page.locator("#calls tbody tr.status-429")
    expect(refused).to_have_count(1)
    cells = refused.locator("td")
    expect(cells.nth(2)).to_contain_text("r=0")
    assert 0 < int(cells.nth(3).inner_text()) <= 60
    expect(cells.nth(4)).to_have_text("Too many requests. Please try again later.")  # JSON


def test_rate_limit_page_keeps_the_signed_in_visitor_in_the_header(site: str, page: Any) -> None:
    """Open the rate-limit demo signed in: the header still says who is signed in.

    The page's own context once had a ``user`` key (the per-user quota), which hid Django's
    ``user`` and made the header offer "Log in" to a signed-in visitor.
    """
    log_in(page, site)
    page.get_by_role("link", name="djredis reference site").click()
    page.get_by_role("link", name="A rate-limited JSON API").click()
    expect(page).to_have_url(site + "/ratelimit/")
    expect(page.locator("#account")).to_contain_text(f"Signed in as {DEMO_LOGIN[0]}")
    expect(page.locator("#remaining-user")).to_have_text(re.compile(r"^\d+$"))


def test_pages_reached_by_clicking_log_no_console_error(site: str, page: Any) -> None:
    """Click from the home page to each demo: no console error, no failed request, an icon.

    A missing /favicon.ico used to be a 404 (a console error) on every page.
    """
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(site + "/")
    names = [
        "Multiple caches",
        "Per-view caching",
        "Direct Redis access",
        "A rate-limited JSON API",
    ]
    for name in names:
        page.get_by_role("link", name=name).click()
        page.wait_for_load_state("load")
        page.go_back()
    icon = page.request.get(site + "/favicon.ico")
    assert icon.status == 200
    assert icon.headers["content-type"].startswith("image/")
    assert errors == []
