"""The reference site's dashboard under two uvicorn workers shows the whole site's hit ratio.

Each worker counts its cache reads in prometheus_client's multiprocess files
(``PROMETHEUS_MULTIPROC_DIR``, as ``run.py --production`` sets it); the dashboard reads the
sum, whichever worker answers. The test drives cache reads through the site, then asks the
dashboard until both workers have answered, and checks that the site figures both give
are the sum of the two workers' own counters.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._servers import RedisServer

from ._example import ExampleSite

pytest.importorskip("prometheus_client")


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[ExampleSite]:
    server = RedisServer().start()
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    site = ExampleSite(server, tmp_path, workers=2)
    site.env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    site.env["DJREDIS_EXAMPLE_METRICS_TOKEN"] = "scrape"
    try:
        yield site.start(timeout=60)
    finally:
        site.stop()
        server.stop()


def fetch(url: str, **headers: str) -> Any:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:  # a new connection each time
        return response.read().decode()


def default_alias(snapshot: dict[str, Any]) -> dict[str, Any]:
    (found,) = [a for a in snapshot["aliases"] if a["alias"] == "default"]
    return found


def test_the_dashboard_shows_the_hit_ratio_of_both_workers_together(
    two_workers: ExampleSite,
) -> None:
    base = two_workers.base
    for _ in range(40):  # cache_page: a miss, then hits, on whichever worker answers
        fetch(base + "/cache-page/")
    latest: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    while len(latest) < 2:
        if time.monotonic() > deadline:
            pytest.fail(f"one worker answered every request: {sorted(latest)}")
        snapshot = json.loads(fetch(base + "/dashboard/data.json"))
        latest[snapshot["pid"]] = snapshot
    first, second = (default_alias(s) for s in latest.values())
    assert {s["metrics_scope"] for s in latest.values()} == {"every worker"}
    reads = ("hits", "misses", "fails", "hit_ratio")  # (latencies move: the dashboard PINGs)
    assert [first["site"][k] for k in reads] == [second["site"][k] for k in reads]
    site = first["site"]
    assert site["hits"] == first["hits"] + second["hits"]
    assert site["misses"] == first["misses"] + second["misses"]
    assert site["hits"] + site["misses"] >= 40
    assert site["hit_ratio"] == site["hits"] / (site["hits"] + site["misses"])
    scraped = fetch(base + "/metrics", Authorization="Bearer scrape")
    assert f'django_cache_get_hits_total{{backend="default"}} {site["hits"]}' in scraped
