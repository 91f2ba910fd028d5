"""Compare djredis's session engine with Django's cache engine on django-redis and Django's
db engine (SQLite): requests/s of a view that reads and writes the session.

Run from the project root::

    python -m benchmarks.sessions            # full run; rewrites the "sessions" section of docs
    python -m benchmarks.sessions --quick    # a short smoke run; leaves docs/ alone

Two ways of serving the view (``tests/sessions_app/views.py``: ``counter`` increments a
number in the session): Django's test client in this process, and a real ASGI server
(uvicorn, one worker) loaded by ``wrk`` over the loopback. Every contender talks to one
redis-server started for the run. See ``benchmarks/_harness.py`` for how rounds are timed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import _report
from ._asgi import serve, wrk
from ._harness import Contender, Results, rotated, run_rounds, warm_up
from ._session_site import CONTENDERS, configure

if str(_report.PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_report.PROJECT_ROOT))

from tests._servers import RedisServer, free_port  # needs the project root on sys.path

MODULE = "benchmarks.sessions"
SECTION = "sessions"
DJREDIS = "djredis"
DJREDIS_ASYNC = "djredis, async view + djredis middleware"
DJANGO_REDIS = "django-redis cache engine"
DB = "Django db engine (SQLite)"
TEST_CLIENT = (DJREDIS, DJANGO_REDIS, DB)  # the async view needs a real ASGI server
ASGI = (DJREDIS, DJREDIS_ASYNC, DJANGO_REDIS, DB)
TARGET = 1.3  # djredis / django-redis cache engine, requests per second
COOKIES = 64  # distinct sessions wrk cycles through
OP = "write view"


@dataclass(frozen=True)
class Config:
    """How much to measure, and whether to write the docs."""

    rounds: int
    calls: int
    asgi_rounds: int
    asgi_seconds: int
    connections: int
    write_docs: bool


# -- in process: Django's test client -------------------------------------------------------


def client_contender(name: str) -> Contender:
    """Return a contender requesting the view through its own test client and middleware."""
    from django.test import Client
    from django.test.utils import override_settings

    engine, middleware, url = CONTENDERS[name]
    client = Client()
    with override_settings(SESSION_ENGINE=engine, MIDDLEWARE=[middleware]):
        client.get(url)  # loads the middleware chain (it keeps this engine) and the cookie
    if client.get(url).status_code != 200:
        raise RuntimeError(f"{name}: the view failed")
    return Contender(name, {OP: lambda: client.get(url)}, engine)


def commands_per_request(contender: Contender, redis_url: str, requests: int = 50) -> str:
    """Return the round trips one request costs: Redis commands sent (MONITOR, commands
    run inside scripts not counted) or SQL queries."""
    import redis
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call = contender.ops[OP]
    if contender.name == DB:
        with CaptureQueriesContext(connection) as queries:
            for _ in range(requests):
                call()
        return f"{len(queries) / requests:g} SQL queries"
    client = redis.Redis.from_url(redis_url)
    with client.monitor() as monitor:
        for _ in range(requests):
            call()
        redis.Redis.from_url(redis_url).echo("benchmark-end")
        sent: dict[str, int] = {}
        while True:
            command = monitor.next_command()
            if command["command"] == "ECHO benchmark-end":
                break
            if command.get("client_type") != "lua" and not command["command"].startswith(
                ("HELLO", "CLIENT")
            ):
                name = command["command"].split()[0].upper()
                sent[name] = sent.get(name, 0) + 1
    detail = " + ".join(f"{n / requests:g} {name}" for name, n in sorted(sent.items()))
    return f"{sum(sent.values()) / requests:g} Redis commands ({detail})"


# -- a real server: uvicorn + wrk -----------------------------------------------------------

WRK_SCRIPT = """
cookies = {%s}
request = function()
  return wrk.format("GET", "%s", {["Cookie"] = cookies[math.random(#cookies)]})
end
"""


def serve_and_load(name: str, redis_url: str, sqlite: str, config: Config, work: Path) -> float:
    """Start uvicorn for one contender, load it with wrk; return requests per second."""
    env = {
        "DJREDIS_BENCH_ENGINE": name,
        "DJREDIS_BENCH_REDIS": redis_url,
        "DJREDIS_BENCH_SQLITE": sqlite,
    }
    with serve("benchmarks._session_site:app", free_port(), env) as base:
        url = CONTENDERS[name][2]
        cookies = []
        for _ in range(COOKIES):
            with urllib.request.urlopen(base + url, timeout=10) as reply:
                header = reply.headers["Set-Cookie"]
            cookies.append('"' + header.split(";", 1)[0] + '"')
        script = work / "wrk.lua"
        script.write_text(WRK_SCRIPT % (", ".join(cookies), url))
        return wrk(base + url, config.connections, config.asgi_seconds, script).requests_per_second


def run_asgi(redis_url: str, sqlite: str, config: Config) -> dict[str, list[float]]:
    """Return requests/s per contender, one sample per round, in rotated order."""
    samples: dict[str, list[float]] = {name: [] for name in ASGI}
    order = [Contender(name, {}) for name in ASGI]
    with tempfile.TemporaryDirectory(prefix="djredis-bench-") as work:
        for number in range(config.asgi_rounds):
            for contender in rotated(order, number):
                rps = serve_and_load(contender.name, redis_url, sqlite, config, Path(work))
                samples[contender.name].append(rps)
            print(f"  ASGI round {number + 1}/{config.asgi_rounds} done", file=sys.stderr)
    return samples


# -- reporting ------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def client_rows(results: Results, commands: dict[str, str]) -> list[list[str]]:
    rows = []
    for name in TEST_CLIENT:
        median = results.median(OP, name)
        low, high = results.spread(OP, name)
        rows.append([
            name,
            f"{1e6 / median:.0f}",
            f"{1e6 / high:.0f}-{1e6 / low:.0f}",
            f"{median:.0f}",
            f"{results.ratio(OP, DJANGO_REDIS, name):.2f}x",
            commands[name],
        ])  # fmt: skip
    return rows


CLIENT_HEADERS = (
    "contender",
    "requests/s (median)",
    "range over rounds",
    "µs/request",
    "x django-redis",
    "round trips per request",
)


def asgi_rows(samples: dict[str, list[float]]) -> list[list[str]]:
    reference = _median(samples[DJANGO_REDIS])
    return [
        [
            name,
            f"{_median(values):.0f}",
            f"{min(values):.0f}-{max(values):.0f}",
            f"{_median(values) / reference:.2f}x",
        ]
        for name, values in samples.items()
    ]


ASGI_HEADERS = ("contender", "requests/s (median)", "range over rounds", "x django-redis")


def target_rows(results: Results, samples: dict[str, list[float]] | None) -> list[list[str]]:
    rows = []
    ratio = results.ratio(OP, DJANGO_REDIS, DJREDIS)
    rows.append(["test client", "djredis", f"{ratio:.2f}x", f"≥ {TARGET}x", _status(ratio)])
    if samples:
        reference = _median(samples[DJANGO_REDIS])
        for name in (DJREDIS, DJREDIS_ASYNC):
            ratio = _median(samples[name]) / reference
            rows.append(["uvicorn + wrk", name, f"{ratio:.2f}x", f"≥ {TARGET}x", _status(ratio)])
    return rows


def _status(ratio: float) -> str:
    return "MET" if ratio >= TARGET else "NOT MET"


TARGET_HEADERS = ("server", "contender", "requests/s vs django-redis", "target", "status")


def markdown_section(
    config: Config,
    results: Results,
    commands: dict[str, str],
    samples: dict[str, list[float]] | None,
    server_version: str,
) -> str:
    asgi = (
        _report.markdown_table(ASGI_HEADERS, asgi_rows(samples), "lrrr")
        if samples
        else "(not run: `--no-asgi`)"
    )
    return f"""{_report.section_head("Session engines", MODULE, server_version)}

### Method

- The view (`tests/sessions_app/views.py`, `counter`) reads a number from the session and
  writes it back incremented, so every request loads and saves an existing session.
- Contenders: `djredis.sessions`; Django's `cache` engine on a `django_redis.cache.RedisCache`
  alias (`SESSION_CACHE_ALIAS`); Django's `db` engine on SQLite (a file in a temp dir). All
  with Django's `SessionMiddleware`, default settings (JSON serializer), one `redis-server`
  started for the run on 127.0.0.1.
- **Test client**: Django's `Client` in this process; {config.rounds} interleaved rounds of
  {config.calls} requests per contender, order rotated each round, GC off during a batch;
  median over rounds. Round trips per request are counted with `MONITOR` (commands a Lua
  script runs server-side are not round trips) or Django's captured SQL queries.
- **ASGI**: `uvicorn benchmarks._session_site:app` (one worker, h11, asyncio loop) loaded
  by `wrk -t1 -c{config.connections} -d{config.asgi_seconds}s` over the loopback, cycling
  through {COOKIES} existing sessions; {config.asgi_rounds} rounds, a fresh server per
  contender and round, order rotated. A sync view under ASGI runs in Django's one
  thread-sensitive executor, session I/O included; the extra contender *djredis, async
  view + djredis middleware* uses `djredis.middleware.SessionMiddleware` and an async view
  (`acounter`: `aget`/`aset`), so load and save run on the event loop (`aload`/`asave`).
- Machine: 2 logical CPUs shared by the server, wrk and redis-server; absolute numbers
  are low, ratios are what to read.

### Test client

{_report.markdown_table(CLIENT_HEADERS, client_rows(results, commands), "lrrrrl")}

### ASGI server

{asgi}

### Target

djredis ≥ {TARGET}x the requests/s of Django's cache engine on django-redis, on the write view.

{_report.markdown_table(TARGET_HEADERS, target_rows(results, samples), "llrrl")}
"""


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> tuple[Config, bool]:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, help="test-client rounds (default 15)")
    parser.add_argument("--calls", type=int, help="requests per batch (default 300)")
    parser.add_argument("--asgi-rounds", type=int, help="uvicorn + wrk rounds (default 3)")
    parser.add_argument("--seconds", type=int, help="wrk duration per run (default 8)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--quick", action="store_true", help="a short run; leaves docs/ alone")
    parser.add_argument("--no-asgi", action="store_true", help="skip uvicorn + wrk")
    parser.add_argument("--no-docs", action="store_true", help="only print the results")
    args = parser.parse_args(argv)
    config = Config(
        rounds=args.rounds or (3 if args.quick else 15),
        calls=args.calls or (100 if args.quick else 300),
        asgi_rounds=args.asgi_rounds or (1 if args.quick else 3),
        asgi_seconds=args.seconds or (2 if args.quick else 8),
        connections=args.connections,
        write_docs=not (args.quick or args.no_docs),
    )
    return config, not args.no_asgi


def main(argv: Sequence[str] | None = None) -> None:
    """Start a redis-server, benchmark the session engines, print and document the results."""
    config, asgi = parse_args(argv)
    server = RedisServer().start()
    work = tempfile.mkdtemp(prefix="djredis-bench-db-")
    sqlite = str(Path(work) / "sessions.sqlite3")
    try:
        redis_url = server.url(0)
        server_version = str(server.client().info("server")["redis_version"])
        configure(DJREDIS, redis_url, sqlite)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        contenders = [client_contender(name) for name in TEST_CLIENT]
        warm_up(contenders, {OP: 100})
        commands = {c.name: commands_per_request(c, redis_url) for c in contenders}
        print(f"Timing {len(contenders)} contenders, {config.rounds} rounds...", file=sys.stderr)
        results = run_rounds(contenders, [OP], {OP: config.calls}, config.rounds)
        samples = run_asgi(redis_url, sqlite, config) if asgi else None
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(_report.text_table(CLIENT_HEADERS, client_rows(results, commands), "lrrrrl"))
    if samples:
        print()
        print(_report.text_table(ASGI_HEADERS, asgi_rows(samples), "lrrr"))
    print()
    print(_report.text_table(TARGET_HEADERS, target_rows(results, samples), "llrrl"))
    if config.write_docs:
        section = markdown_section(config, results, commands, samples, server_version)
        page = _report.write_section(SECTION, section)
        print(f"\nWrote {page.relative_to(_report.PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
