"""Site tests: the guides' snippets and the reference site, through the test client and a real
headless Chromium.

The reference site (example/) is started once per session under uvicorn, against its own
redis-server; every site test module shares it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._servers import RedisServer

from ._example import ExampleSite, celery_broker_problem, stop_process

CHROMIUM = Path("/usr/bin/chromium")
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


@pytest.fixture(scope="session")
def example_redis() -> Iterator[RedisServer]:
    """The reference site's own redis-server (databases 0-5 as its settings lay them out)."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def example_site(
    example_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExampleSite]:
    """Serve example/ under uvicorn against ``example_redis``."""
    site = ExampleSite(example_redis, tmp_path_factory.mktemp("example-site"))
    try:
        yield site.start()
    finally:
        site.stop()


@pytest.fixture(scope="session")
def example_celery(example_site: ExampleSite) -> Iterator[ExampleSite]:
    """Run a real Celery worker and Celery beat for the site, on its Redis broker."""
    problem = celery_broker_problem(example_site.redis_server.url(3))
    if problem:
        pytest.skip(f"Celery cannot use a Redis broker here: {problem}")
    worker = example_site.start_celery(
        "worker", "--loglevel=info", "--pool=threads", "--concurrency=4", "--without-gossip",
        "--without-mingle", "--hostname=test-worker@%h",
    )  # fmt: skip
    beat = example_site.start_celery(
        "beat", "--loglevel=info", f"--schedule={example_site.scratch / 'beat-schedule'}"
    )
    try:
        yield example_site
    finally:
        stop_process(beat)
        stop_process(worker)


@pytest.fixture(scope="session")
def site(example_site: ExampleSite) -> str:
    """The reference site's base URL."""
    return example_site.base


# Module scope, not session: Playwright's sync API runs an event loop in the main thread
# while it is open, and every later test calling asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Launch Debian's Chromium, headless, through Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="the playwright package is not installed (pip install playwright)",
    )
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """Return a factory of pages, each in a fresh browser context (its own cookies)."""
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context()
        contexts.append(context)
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        return tab

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Any) -> Any:
    """A page in a fresh browser context (no cookies)."""
    return new_page()
