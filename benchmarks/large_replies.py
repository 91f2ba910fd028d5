"""Time ``get`` of one 10 MB value and ``get_many`` of 1,000 x 10 KB values: djredis on each
RESP reader, and django-redis.

Run from the project root::

    python -m benchmarks.large_replies          # full run; rewrites the "large_replies" docs
    python -m benchmarks.large_replies --quick  # 3-round smoke test; leaves docs/ alone

The default ``pip install djredis`` has no hiredis, so its replies go through the
pure-Python reader; a 10 MB reply arrives in many socket reads, which is where a reader that
restarts a partial reply is quadratic, and where every extra copy of the value costs fresh
memory. Run it with a Python that lacks hiredis to measure exactly the default install:
the hiredis contender is then left out (and redis-py's default parser is its Python one).
Every contender talks to one redis-server started for the run, each in its own database.
See ``benchmarks/_harness.py`` for how rounds are timed.
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
GET, GET_MANY = "get", "get_many"
OPERATIONS = (GET, GET_MANY)
BIG_SIZE = 10_000_000  # the one value of `get`
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


def hiredis_installed() -> bool:
    from djredis._io.resp import HIREDIS_INSTALLED

    return HIREDIS_INSTALLED


def order() -> tuple[str, ...]:
    """The contenders of this run: without hiredis, djredis has only its Python reader."""
    return ORDER if hiredis_installed() else tuple(n for n in ORDER if n != DJREDIS_HI)


def build_contenders(server: RedisServer) -> list[Contender]:
    """Fill each cache with the same values, open its connection, check that it reads hits."""
    from django.core.cache import caches

    configure_django(server)
    patch_new_reader()
    values = {f"large:{i}": os.urandom(SIZE) for i in range(COUNT)}
    keys = list(values)
    big = os.urandom(BIG_SIZE)
    contenders = []
    for name, alias, backend, _, options, reader in BACKENDS:
        if name not in order():
            continue
        cache = caches[alias]
        with forced(reader):
            cache.set_many(values, TIMEOUT)
            cache.set("big", big, TIMEOUT)
            if cache.get_many(keys) != values:
                raise RuntimeError(f"{name}: get_many() does not return the stored values")
            if cache.get("big") != big:
                raise RuntimeError(f"{name}: get() does not return the stored value")
        ops: dict[str, Callable[[], object]] = {
            GET: lambda cache=cache: cache.get("big"),
            GET_MANY: lambda cache=cache: cache.get_many(keys),
        }
        described = f"`{backend}`" + (f", OPTIONS {options}" if options else "")
        contenders.append(Contender(name, ops, described))
    for kind in ("python", "hiredis") if hiredis_installed() else ("python",):
        if _made.get(kind) != {"djredis._io.resp" if kind == "python" else "hiredis"}:
            raise RuntimeError(f"djredis did not use the {kind} reader: made {_made}")
    return contenders


# -- reporting --------------------------------------------------------------------------------

HEADERS = (
    "operation",
    "contender",
    "median ms/op",
    "range over rounds",
    "x django-redis",
    "paired",
)
ALIGN = "llrrrr"
OP_LABELS = {GET: "get (one 10 MB value)", GET_MANY: f"get_many ({COUNT:,} x 10 KB)"}


def rows(results: Results) -> list[list[str]]:
    out = []
    for op in OPERATIONS:
        for name in order():
            low, high = results.spread(op, name)
            out.append(
                [
                    OP_LABELS[op],
                    name,
                    f"{results.median(op, name) / 1000:.1f}",
                    f"{low / 1000:.1f}-{high / 1000:.1f}",
                    f"{results.ratio(op, name, REFERENCE):.2f}x",
                    f"{results.paired_ratio(op, name, REFERENCE):.2f}x",
                ]
            )
    return out


TARGET_HEADERS = ("target", "measured (ratio of medians / paired)", "required", "status")


def target_rows(results: Results) -> list[list[str]]:
    """djredis's default reader against django-redis's default parser, on both operations."""
    out = []
    for op in OPERATIONS:
        ratio = results.ratio(op, DJREDIS_PY, REFERENCE)
        paired = results.paired_ratio(op, DJREDIS_PY, REFERENCE)
        out.append(
            [
                f"{OP_LABELS[op]}, pure-Python reader vs django-redis",
                f"{ratio:.2f}x / {paired:.2f}x",
                "≤ 1.0x",
                "MET" if max(ratio, paired) <= 1.0 else "NOT MET",
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
- `get` of one key holding {BIG_SIZE:,} random bytes, and `get_many` of {COUNT:,} keys
  holding {SIZE:,}-byte random values (one `MGET`, a reply of about
  {COUNT * SIZE // 1_000_000} MB), all hits.
- djredis's reader is forced per cache inside the benchmark process: the pure-Python reader
  is what the default install (no hiredis) uses. {_hiredis_note()}
- {config.rounds} interleaved rounds of {config.calls} calls per contender, the order rotated
  each round, GC off during a batch. Reported: the median ms/op, the fastest and slowest
  round, the ratio of medians to django-redis with its default parser, and the median of the
  per-round ratios (`paired`).

Contenders:

{described}

### Results

{_report.markdown_table(HEADERS, rows(results), ALIGN)}

### Targets

A MET needs both the ratio of medians and the paired ratio within the limit.

{_report.markdown_table(TARGET_HEADERS, target_rows(results), "lrrl")}
"""


def _hiredis_note() -> str:
    if hiredis_installed():
        return "hiredis is installed in this run: django-redis's default parser is hiredis."
    return (
        "hiredis is not installed in this run (the default install): djredis has only its "
        "Python reader, and django-redis's default parser is redis-py's Python one."
    )


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
        calls = dict.fromkeys(OPERATIONS, config.calls)
        results = run_rounds(contenders, OPERATIONS, calls, config.rounds)
    finally:
        server.stop()
    print()
    print(_report.text_table(HEADERS, rows(results), ALIGN))
    print()
    print(_report.text_table(TARGET_HEADERS, target_rows(results), "lrrl"))
    if config.write_docs:
        page = _report.write_section(
            SECTION, markdown_section(config, contenders, results, server_version)
        )
        print(f"\nWrote {page.relative_to(_report.PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
