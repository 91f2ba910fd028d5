#!/usr/bin/env python3
"""Regenerate docs/screenshots/*.png: the reference site's main pages in headless Chromium.

    PYTHONPATH=src:. .venv/bin/python scripts/make_screenshots.py

Runs the site as the tests do (tests/site/_example.py: uvicorn, a private redis-server, a
Celery worker), drives Debian's /usr/bin/chromium through Playwright (never a downloaded
browser) and clicks through the pages the way a visitor would.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests._servers import RedisServer  # noqa: E402
from tests.site._example import DEMO_LOGIN, ExampleSite, stop_process  # noqa: E402
from tests.site.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def shoot(page: Page, name: str) -> None:
    """Save the page, full length, as docs/screenshots/<name>.png."""
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=False)
    print(f"wrote {OUT / name}.png")


def main() -> None:
    """Start the site, click through it and save the screenshots."""
    OUT.mkdir(parents=True, exist_ok=True)
    redis_server = RedisServer().start()
    with tempfile.TemporaryDirectory() as scratch:
        site = ExampleSite(redis_server, Path(scratch)).start()
        worker = site.start_celery("worker", "--pool=threads", "--concurrency=2")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
                )
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                page.goto(site.base + "/")
                shoot(page, "home")
                page.get_by_role("link", name="Per-view caching").click()
                page.locator("#reload").click()
                expect(page.locator("#source")).to_have_text("Served from cache")
                shoot(page, "cache-page")
                page.goto(site.base + "/login/")
                page.get_by_label("Username").fill(DEMO_LOGIN[0])
                page.get_by_label("Password").fill(DEMO_LOGIN[1])
                page.get_by_role("button", name="Log in").click()
                other = browser.new_page()
                other.goto(site.base + "/login/")
                other.get_by_label("Username").fill(DEMO_LOGIN[0])
                other.get_by_label("Password").fill(DEMO_LOGIN[1])
                other.get_by_role("button", name="Log in").click()
                page.reload()
                shoot(page, "sessions")
                page.goto(site.base + "/tasks/")
                page.get_by_role("button", name="… that fails twice first").click()
                expect(page.locator("#task-state")).to_have_text("SUCCESS", timeout=30_000)
                shoot(page, "task")
                page.goto(site.base + "/api-tour/")
                page.get_by_role("link", name="djredis reference site").click()
                page.get_by_role("link", name="Redis dashboard").click()
                expect(page.locator("#aliases tbody tr")).to_have_count(3)
                shoot(page, "dashboard")
                page.get_by_role("link", name="djredis reference site").click()
                page.get_by_role("link", name="WebSocket chat").click()
                page.locator("#rooms").get_by_role("link", name="lobby").click()
                other.goto(site.base + "/chat/lobby/")
                for tab in (page, other):
                    expect(tab.locator("#chat-state")).to_have_text("Connected")
                page.get_by_label("Message").fill("Is the layer on Redis?")
                page.get_by_role("button", name="Send").click()
                other.get_by_label("Message").fill("Yes: djredis.channels, database 5.")
                other.get_by_role("button", name="Send").click()
                expect(page.locator("#chat-log li")).to_have_count(2)
                shoot(page, "chat")
                browser.close()
        finally:
            stop_process(worker)
            site.stop()
            redis_server.stop()


if __name__ == "__main__":
    main()
