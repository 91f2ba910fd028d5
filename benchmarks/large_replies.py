"""Time ``get_many`` of 1,000 x 10 KB values: djredis on each RESP reader, and django-redis.

Run from the project root::

    python -m benchmarks.large_replies          # full run; rewrites the "large_replies" docs
    python -m benchmarks.large_replies --quick  # 3-round smoke test; leaves docs/ alone

The default ``pip install djredis`` has no hiredis, so its replies go through the
pure-Python reader; a 10 MB reply arrives in many socket reads, which is where a reader that
restarts a partial reply is quadratic. Every contender talks to one redis-server started for
the run, each in its own database. See ``benchmarks/_harness.py`` for how rounds are timed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import _report
from ._harness import Contender, Results, run_rounds

if str(_report.PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_report.PROJECT_ROOT))

from tests._servers import RedisServer  # needs the project root on sys.path

MODULE = "benchmarks.large_replies"
SECTION = "large_replies"
OP = "get_many"
COUNT = 1000
SIZE = 10_000
TIMEOUT = 300

DJREDIS_PY = "djredis, pure-Python reader"
DJREDIS_HI = "djredis, hiredis"
DJANGO_REDIS_PY = "django-redis, redis-py Python parser"
DJANGO_REDIS = "django-redis, default parser"
ORDER = (DJREDIS_PY, DJREDIS_HI, DJANGO_REDIS_PY, DJANGO_REDIS)
REFERENCE = DJANGO_REDIS

# (name, alias, BACKEND, db, OPTIONS, djredis reader to force or None)
BACKENDS: tuple[tuple[str, str, str, int, dict[str, Any], str | None], ...] = (
    (DJREDIS_PY, "djredis_py", "djredis.cache.RedisCache", 1, {}, "python"),
    (DJREDIS_HI, "djredis_hi", "djredis.cache.RedisCache", 2, {}, "hiredis"),
    (
        DJANGO_REDIS_PY,
        "django_redis_py",
        "django_redis.cache.RedisCache",
        3,
        {"PARSER_CLASS": "redis.connection._RESP2Parser"},
        None,
    ),
    (DJANGO_REDIS, "django_redis", "django_redis.cache.RedisCache", 4, {}, None),
)


@dataclass(frozen=True)
class Config:
    """How much to measure, and whether to write the docs."""

    rounds: int
    calls: int
    write_docs: bool


# -- choosing djredis's reader ----------------------------------------------------------------

# Which reader djredis's connections get while a contender opens them: each cache uses its
# own database, hence its own pool, whose connection is opened (with its reader) during
# warm-up and kept.
_forced: list[str] = []
_made: dict[str, set[str]] = {}


def patch_new_reader() -> None:
    """Make every djredis module that builds readers honour ``_forced`` (this process only)."""
    import djredis.cache  # noqa: F401 - loads the connection modules
    from djredis._io import resp as _resp

    original = _resp.new_reader

    def new_reader(kind: str | None = None) -> Any:
        reader = _resp.PythonReader() if _forced and _forced[-1] == "python" else original(kind)
        if _forced:
            _made.setdefault(_forced[-1], set()).add(type(reader).__module__)
        return reader

    for name, module in list(sys.modules.items()):
        if name.startswith("djredis") and getattr(module, "new_reader", None) is original:
            module.new_reader = new_reader  # type: ignore[attr-defined]


@contextmanager
def forced(kind: str | None) -> Iterator[None]:
    if kind is not None:
        _forced.append(kind)
    try:
        yield
    finally:
        if kind is not None:
            _forced.pop()


# -- contenders -------------------------------------------------------------------------------


def configure_django(server: RedisServer) -> None:
    import django
    from django.conf import settings

    caches = {
        alias: {"BACKEND": backend, "LOCATION": server.url(db), "OPTIONS": options}
        for _, alias, backend, db, options, _ in BACKENDS
    }
    settings.configure(CACHES=caches, USE_TZ=True)
    django.setup()


def build_contenders(server: RedisServer) -> list[Contender]:
    """Fill each cache with the same values, open its connection, check that it reads hits."""
    from django.core.cache import caches

    configure_django(server)
    patch_new_reader()
    values = {f"large:{i}": os.urandom(SIZE) for i in range(COUNT)}
    keys = list(values)
    contenders = []
    for name, alias, backend, _, options, reader in BACKENDS:
        cache = caches[alias]
        with forced(reader):
            cache.set_many(values, TIMEOUT)
            if cache.get_many(keys) != values:
                raise RuntimeError(f"{name}: get_many() does not return the stored values")
        call: Callable[[], object] = lambda cache=cache: cache.get_many(keys)  # noqa: E731
        described = f"`{backend}`" + (f", OPTIONS {options}" if options else "")
        contenders.append(Contender(name, {OP: call}, described))
    for kind in ("python", "hiredis"):
        if _made.get(kind) != {"djredis._io.resp" if kind == "python" else "hiredis"}:
            raise RuntimeError(f"djredis did not use the {kind} reader: made {_made}")
    return contenders


# -- reporting --------------------------------------------------------------------------------

HEADERS = ("contender", "median ms/op", "range over rounds", "x django-redis", "paired")
ALIGN = "lrrrr"


def rows(results: Results) -> list[list[str]]:
    out = []
    for name in ORDER:
        low, high = results.spread(OP, name)
        out.append(
            [
                name,
                f"{results.median(OP, name) / 1000:.1f}",
                f"{low / 1000:.1f}-{high / 1000:.1f}",
                f"{results.ratio(OP, name, REFERENCE):.2f}x",
                f"{results.paired_ratio(OP, name, REFERENCE):.2f}x",
            ]
        )
    return out


def markdown_section(
    config: Config, contenders: Sequence[Contender], results: Results, server_version: str
) -> str:
    described = "\n".join(f"- **{c.name}**: {c.description}" for c in contenders)
    return f"""{_report.section_head("Large replies", MODULE, server_version)}

### Method

- One `redis-server` started for the run on 127.0.0.1; each contender uses its own database.
- `get_many` of {COUNT:,} keys holding {SIZE:,}-byte random values (one `MGET`, a reply of
  about {COUNT * SIZE // 1_000_000} MB), all hits.
- djredis's reader is forced per cache inside the benchmark process: the pure-Python reader
  is what the default install (no hiredis) uses.
- {config.rounds} interleaved rounds of {config.calls} calls per contender, the order rotated
  each round, GC off during a batch. Reported: the median ms/op, the fastest and slowest
  round, the ratio of medians to django-redis with its default parser, and the median of the
  per-round ratios (`paired`).

Contenders:

{described}

### Results

{_report.markdown_table(HEADERS, rows(results), ALIGN)}
"""


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> Config:
    doc = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=doc)
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 9)")
    parser.add_argument("--calls", type=int, help="calls per batch (default 5)")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 2 calls; no docs")
    parser.add_argument("--no-docs", action="store_true", help="only print the results")
    args = parser.parse_args(argv)
    return Config(
        rounds=args.rounds or (3 if args.quick else 9),
        calls=args.calls or (2 if args.quick else 5),
        write_docs=not (args.quick or args.no_docs),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Start a redis-server, time every contender, print and document the results."""
    config = parse_args(argv)
    server = RedisServer().start()
    try:
        server_version = str(server.client().info("server")["redis_version"])
        contenders = build_contenders(server)
        print(f"Timing {len(contenders)} contenders, {config.rounds} rounds...", file=sys.stderr)
        results = run_rounds(contenders, (OP,), {OP: config.calls}, config.rounds)
    finally:
        server.stop()
    print()
    print(_report.text_table(HEADERS, rows(results), ALIGN))
    if config.write_docs:
        page = _report.write_section(
            SECTION, markdown_section(config, contenders, results, server_version)
        )
        print(f"\nWrote {page.relative_to(_report.PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
