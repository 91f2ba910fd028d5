"""Drive the reference site (example/) in a real headless Chromium.

The site runs as ``manage.py runserver --noreload`` on a free port against a private
redis-server; Playwright drives Debian's Chromium (/usr/bin/chromium). Without Chromium or
the ``playwright`` package the module is skipped: CI installs both (apt: chromium; pip:
playwright — its bundled driver only, never ``playwright install``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._servers import RedisServer, free_port

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Chromium is not installed (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install playwright)"
)
expect = sync_api.expect

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "example"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/djredis-example-leaderboard.png")


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until ``url`` answers, failing early if the server process died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"runserver exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.1)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve example/ against a private Redis; yield its base URL."""
    redis_server = RedisServer().start()
    scratch = tmp_path_factory.mktemp("example-site")
    env = {
        **os.environ,
        "DJREDIS_EXAMPLE_REDIS_URL": redis_server.url(0),
        "DJREDIS_EXAMPLE_DB": str(scratch / "db.sqlite3"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)  # pytest's tests.settings is not the site's
    manage = [sys.executable, str(EXAMPLE_DIR / "manage.py")]
    port = free_port()
    log_path = scratch / "runserver.log"
    server: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [*manage, "migrate", "--noinput", "--verbosity", "0"],
            cwd=EXAMPLE_DIR,
            env=env,
            check=True,
            capture_output=True,
        )
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
                cwd=EXAMPLE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base + "/", server)
        yield base
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        redis_server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Launch Debian's Chromium, headless, through Playwright."""
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """Open a fresh browser context (no cookies) and page."""
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def test_home_page_lists_every_demo(site: str, page: Any) -> None:
    """List the four demos on the home page, with links that open them."""
    page.goto(site + "/")

    links = page.locator("#demos a")
    expect(links).to_have_text(
        [
            "Per-view caching",
            "Template fragment caching",
            "Low-level cache API",
            "Direct Redis access",
        ]
    )
    expect(page.locator("main")).to_contain_text("djredis.cache.RedisCache")
    links.nth(3).click()
    expect(page).to_have_url(site + "/leaderboard/")
    expect(page.locator("h1")).to_contain_text("get_redis_connection")


def test_cache_page_demo_says_from_cache_on_second_load(site: str, page: Any) -> None:
    """Render the page on the first load; serve the reload from Redis, same stamp."""
    url = f"{site}/cache-page/?visit={uuid.uuid4().hex}"  # a URL nobody has cached yet

    page.goto(url)
    expect(page.locator("#source")).to_have_text("Freshly rendered (cache miss)")
    rendered_at = page.locator("#rendered-at").inner_text()

    page.reload()
    expect(page.locator("#source")).to_have_text("Served from cache")
    expect(page.locator("#rendered-at")).to_have_text(rendered_at)


def test_fragment_demo_keeps_fragment_until_invalidated(site: str, page: Any) -> None:
    """Keep the cached block's render time across loads until the button invalidates it."""
    page.goto(site + "/fragment/")
    page.get_by_role("button", name="Invalidate the fragment").click()
    expect(page.locator("#fragment-state")).to_contain_text("Not cached before this request")
    stamp = page.locator("#fragment-rendered-at").inner_text()

    page.reload()
    expect(page.locator("#fragment-state")).to_contain_text("Cached fragment: expires in")
    expect(page.locator("#fragment-rendered-at")).to_have_text(stamp)
    expect(page.locator("#fragment li")).to_have_count(4)


def test_counter_increments_on_click_and_shows_ttl(site: str, page: Any) -> None:
    """Add one per click through cache.incr and show the key's TTL from Redis."""
    page.goto(site + "/counter/")
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
    for name, score in [("Ada", "30"), ("Grace", "50"), ("Linus", "40")]:
        page.get_by_label("Name").fill(name)
        page.get_by_label("Score").fill(score)
        page.get_by_role("button", name="Add score").click()
        expect(page.locator("#leaderboard .name").filter(has_text=name)).to_have_count(1)

    expect(page.locator("#leaderboard .name")).to_have_text(["Grace", "Linus", "Ada"])
    expect(page.locator("#leaderboard .score")).to_have_text(["50", "40", "30"])
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 0
