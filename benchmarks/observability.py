"""Time what tracing and metrics cost on the cache path: the same cache, observed or not.

Run from the project root::

    python -m benchmarks.observability          # full run; rewrites the "observability" docs
    python -m benchmarks.observability --quick  # 3-round smoke test; leaves docs/ alone

One cache, one redis-server; each contender turns its observers on before its batch and off
after it, so every contender times the same connections in the same rounds (paired).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import _report
from ._harness import Contender, Results, run_rounds, warm_up

if str(_report.PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_report.PROJECT_ROOT))

from tests._servers import RedisServer  # needs the project root on sys.path

MODULE = "benchmarks.observability"
SECTION = "observability"
OFF = "off (nothing installed)"
NO_PROVIDER = "otel instrumented, no tracer provider"
SDK = "otel + SDK, in-memory exporter"
METRICS = "prometheus metrics"
ALL = "otel SDK + metrics + slow log"
ORDER = (OFF, NO_PROVIDER, SDK, METRICS, ALL)
OPS = ("get", "set")
KEY = "user:42"
VALUE = {"id": 4242, "username": "alice", "roles": ["editor", "viewer"], "score": 12.5}


@dataclass(frozen=True)
class Config:
    rounds: int
    calls: int
    write_docs: bool
    # The target's own run: only "off" and "no provider", in many short alternating
    # batches, so that the load of a shared machine hits both alike.
    target_rounds: int = 201
    target_calls: int = 500


def build(server: RedisServer) -> list[Contender]:
    """One cache on ``server``; a contender per set of observers, each on the same ops."""
    import django
    from django.conf import settings

    settings.configure(
        CACHES={"default": {"BACKEND": "djredis.cache.RedisCache", "LOCATION": server.url(0)}},
        USE_TZ=True,
    )
    django.setup()
    from django.core.cache import cache
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from prometheus_client import CollectorRegistry

    import djredis.metrics
    import djredis.otel
    import djredis.slowlog

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = CollectorRegistry()

    def nothing() -> None:
        return None

    def sdk_off() -> None:
        djredis.otel.uninstrument()
        exporter.clear()

    def all_on() -> None:
        djredis.otel.instrument(provider)
        djredis.metrics.install(registry)
        djredis.slowlog.install(threshold_ms=100)

    def all_off() -> None:
        sdk_off()
        djredis.metrics.uninstall()
        djredis.slowlog.uninstall()

    cache.set(KEY, VALUE, 300)
    ops: dict[str, Callable[[], object]] = {
        "get": lambda: cache.get(KEY),
        "set": lambda: cache.set(KEY, VALUE, 300),
    }
    observers: list[tuple[str, Callable[[], object], Callable[[], object], str]] = [
        (OFF, nothing, nothing, "no observer installed (the default)"),
        (
            NO_PROVIDER,
            djredis.otel.instrument,
            djredis.otel.uninstrument,
            "`djredis.otel.instrument()`; OpenTelemetry API installed, no tracer provider set",
        ),
        (
            SDK,
            lambda: djredis.otel.instrument(provider),
            sdk_off,
            "`instrument(provider)`: SDK `TracerProvider`, `SimpleSpanProcessor`, "
            "`InMemorySpanExporter` (two spans per call: `cache.get` and its `GET`)",
        ),
        (
            METRICS,
            lambda: djredis.metrics.install(registry),
            djredis.metrics.uninstall,
            "`djredis.metrics.install(registry)`: django-prometheus counters, command "
            "latency histogram (prometheus_client, single process)",
        ),
        (ALL, all_on, all_off, "all three (slow-command threshold 100 ms, never hit)"),
    ]
    return [Contender(name, ops, about, on, off) for name, on, off, about in observers]


def run(contenders: Sequence[Contender], rounds: int, calls: int) -> Results:
    """Warm every contender's path up, then time them in interleaved rounds."""
    warm_up(contenders, dict.fromkeys(OPS, 300))
    return run_rounds(contenders, OPS, dict.fromkeys(OPS, calls), rounds, report_every=10)


HEADERS = ("operation", "contender", "median µs/op", "range", "x off", "paired x off")
ALIGN = "llrrrr"


def rows(results: Results, order: Sequence[str] = ORDER) -> list[list[str]]:
    return [results.row(op, name, OFF) for op in OPS for name in order]


def markdown_section(
    config: Config,
    contenders: Sequence[Contender],
    results: Results,
    target: Results,
    server_version: str,
) -> str:
    described = "\n".join(f"- **{c.name}**: {c.description}" for c in contenders)
    verdict = []
    for op in OPS:
        ratio = target.paired_ratio(op, NO_PROVIDER, OFF)
        status = "MET" if ratio <= 1.02 else "NOT MET"
        verdict.append(f"| `{op}` | {ratio:.3f}x | ≤ 1.02x | {status} |")
    verdict_table = "\n".join(verdict)
    head = _report.section_head("Tracing and metrics overhead", MODULE, server_version)
    return f"""{head}

### Method

- One `redis-server` for the run on 127.0.0.1, one `djredis.cache.RedisCache`; `get` is a
  hit on a small dict, `set` stores it with a 300 s timeout. The machine was shared (2
  cores, other work running).
- Each contender turns its observers on before its batch and off after it: every contender
  uses the same cache and connections. {config.rounds} interleaved rounds of {config.calls}
  calls per (operation, contender), order rotated each round, GC off during a batch.
  Reported: median µs/op, fastest and slowest round, ratio of medians to "{OFF}", and the
  median of the per-round ratios (`paired`), the figure the target is judged on.

{described}

### Results

{_report.markdown_table(HEADERS, rows(results), ALIGN)}

### Target

OpenTelemetry installed and djredis instrumented, but no tracer provider configured: at
most 2 % on `get`/`set`. Judged on a run of its own: "{OFF}" and "{NO_PROVIDER}" only,
{config.target_rounds} rounds of {config.target_calls} calls each, alternating (the paired
ratio is the median of the per-round ratios).

{_report.markdown_table(HEADERS, rows(target, (OFF, NO_PROVIDER)), ALIGN)}

| operation | paired ratio | target | status |
| :--- | ---: | ---: | :--- |
{verdict_table}
"""


def parse_args(argv: Sequence[str] | None = None) -> Config:
    doc = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=doc)
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 21)")
    parser.add_argument("--calls", type=int, help="calls per batch (default 2000)")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 300 calls; no docs")
    parser.add_argument("--no-docs", action="store_true", help="only print the results")
    parser.add_argument("--target-rounds", type=int, help="rounds of the 2 %% run (default 201)")
    args = parser.parse_args(argv)
    return Config(
        rounds=args.rounds or (3 if args.quick else 21),
        calls=args.calls or (300 if args.quick else 2000),
        write_docs=not (args.quick or args.no_docs),
        target_rounds=args.target_rounds or (5 if args.quick else 201),
        target_calls=500,
    )


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    server = RedisServer().start()
    try:
        server_version = str(server.client().info("server")["redis_version"])
        contenders = build(server)
        results = run(contenders, config.rounds, config.calls)
        pair = [c for c in contenders if c.name in (OFF, NO_PROVIDER)]
        target = run(pair, config.target_rounds, config.target_calls)
    finally:
        server.stop()
    print()
    print(_report.text_table(HEADERS, rows(results), ALIGN))
    print()
    print(_report.text_table(HEADERS, rows(target, (OFF, NO_PROVIDER)), ALIGN))
    if config.write_docs:
        page = _report.write_section(
            SECTION, markdown_section(config, contenders, results, target, server_version)
        )
        print(f"\nWrote {page.relative_to(_report.PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
