"""Compare djredis's bulk cache operations on Redis Cluster with redis-py's RedisCluster.

Run from the project root::

    python -m benchmarks.cluster            # full run; rewrites the "cluster" section of docs
    python -m benchmarks.cluster --quick    # 3-round smoke test; leaves docs/ alone

A Redis Cluster of three primaries (no replicas: nothing else competes for the CPUs) is
started for the run on 127.0.0.1, free ports. ``get_many``/``set_many`` of 100 keys spread
over the three primaries, djredis against the same calls made directly with redis-py's
``RedisCluster`` (``mget_nonatomic``/``mset_nonatomic``), sync and async. See
``benchmarks/_harness.py`` for how rounds are timed.
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import _report
from ._harness import Contender, Results, run_rounds, warm_up

if str(_report.PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_report.PROJECT_ROOT))

from tests._topologies import PASSWORD, USERNAME, Cluster  # needs the project root on sys.path

MODULE = "benchmarks.cluster"
SECTION = "cluster"

OPERATIONS = ("get_many", "set_many", "set_many_ttl")
PRIMARIES = 3
MANY = 100
TIMEOUT = 300
VALUE: dict[str, Any] = {
    "id": 4242,
    "username": "alice",
    "email": "alice@example.com",
    "is_active": True,
    "roles": ["editor", "viewer"],
    "score": 12.5,
}
MANY_DATA: dict[str, Any] = {f"item:{i}": {**VALUE, "id": i} for i in range(MANY)}
MANY_KEYS = list(MANY_DATA)

RAW = "redis-py RedisCluster"
RAW_PIPELINE = "redis-py RedisCluster pipeline SET PX"
DJREDIS = "djredis"
RAW_ASYNC = "redis-py asyncio RedisCluster"
DJREDIS_ASYNC = "djredis async"
ORDER = (RAW, RAW_PIPELINE, DJREDIS, RAW_ASYNC, DJREDIS_ASYNC)
# contender -> the redis-py contender it is compared with (set_many_ttl: the pipeline).
REFERENCE = {DJREDIS: RAW, DJREDIS_ASYNC: RAW_ASYNC}


def reference(op: str, name: str) -> str | None:
    """Return the redis-py contender ``name`` is compared with on ``op``."""
    if op == "set_many_ttl":
        return RAW_PIPELINE if name in (DJREDIS, DJREDIS_ASYNC) else None
    return REFERENCE.get(name)


# op -> (limit on djredis / redis-py, what redis-py does)
TARGETS = {
    "get_many": (1.3, "mget_nonatomic + pickle.loads of each"),
    "set_many": (1.3, "pickle.dumps of each + mset_nonatomic"),
}


@dataclass(frozen=True)
class Config:
    """How much to measure, and whether to write the docs."""

    rounds: int
    calls: dict[str, int]
    warm_calls: dict[str, int]
    write_docs: bool


# -- contenders -------------------------------------------------------------------------------


def raw_key(key: str) -> str:
    """Return the key raw redis-py uses: djredis's layout, so both spread the same way."""
    return f"bench0:1:{{{key}}}"


def raw_contenders(location_port: int) -> list[Contender]:
    """Return redis-py's RedisCluster doing the bulk operations with pickle."""
    from redis.cluster import ClusterNode, RedisCluster

    client = RedisCluster(
        startup_nodes=[ClusterNode("127.0.0.1", location_port)],
        username=USERNAME,
        password=PASSWORD,
    )
    dumps, loads = pickle.dumps, pickle.loads
    many = {raw_key(k): v for k, v in MANY_DATA.items()}
    keys = list(many)
    ttl_ms = TIMEOUT * 1000

    def set_many_pipeline() -> None:
        pipe = client.pipeline()
        for k, v in many.items():
            pipe.set(k, dumps(v), px=ttl_ms)
        pipe.execute()

    ops: dict[str, Callable[[], object]] = {
        "get_many": lambda: [loads(v) for v in client.mget_nonatomic(keys)],
        "set_many": lambda: client.mset_nonatomic({k: dumps(v) for k, v in many.items()}),
    }
    ops["set_many"]()
    return [
        Contender(
            RAW, ops, "`RedisCluster(startup_nodes=...)`, `mget_nonatomic` / `mset_nonatomic`"
        ),
        Contender(
            RAW_PIPELINE,
            {"set_many_ttl": set_many_pipeline},
            f"same client, cluster pipeline of {MANY} `SET k v PX`",
        ),
    ]


def async_raw_contender(location_port: int, loop: asyncio.AbstractEventLoop) -> Contender:
    """Return redis-py's asyncio RedisCluster, each call run to completion on ``loop``."""
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    async def build() -> Any:
        return RedisCluster(
            startup_nodes=[ClusterNode("127.0.0.1", location_port)],
            username=USERNAME,
            password=PASSWORD,
        )

    client = loop.run_until_complete(build())
    dumps, loads = pickle.dumps, pickle.loads
    many = {raw_key(k): v for k, v in MANY_DATA.items()}
    keys = list(many)

    async def get_many() -> list[Any]:
        return [loads(v) for v in await client.mget_nonatomic(keys)]

    async def set_many() -> None:
        await client.mset_nonatomic({k: dumps(v) for k, v in many.items()})

    run = loop.run_until_complete
    run(set_many())
    return Contender(
        RAW_ASYNC,
        {"get_many": lambda: run(get_many()), "set_many": lambda: run(set_many())},
        "`redis.asyncio.cluster.RedisCluster`, same calls, each awaited in `run_until_complete`",
    )


def djredis_contenders(location: str, loop: asyncio.AbstractEventLoop) -> list[Contender]:
    """Return djredis's cache on the cluster, through the sync and the async API."""
    import django
    from django.conf import settings

    settings.configure(USE_TZ=True)
    django.setup()
    from djredis.cache import RedisCache

    cache = RedisCache(location, {"KEY_PREFIX": "bench1"})
    ops: dict[str, Callable[[], object]] = {
        "get_many": lambda: cache.get_many(MANY_KEYS),
        "set_many": lambda: cache.set_many(MANY_DATA, None),
        "set_many_ttl": lambda: cache.set_many(MANY_DATA, TIMEOUT),
    }
    ops["set_many"]()
    run = loop.run_until_complete
    async_ops: dict[str, Callable[[], object]] = {
        "get_many": lambda: run(cache.aget_many(MANY_KEYS)),
        "set_many": lambda: run(cache.aset_many(MANY_DATA, None)),
        "set_many_ttl": lambda: run(cache.aset_many(MANY_DATA, TIMEOUT)),
    }
    return [
        Contender(
            DJREDIS,
            ops,
            "`djredis.cache.RedisCache('redis+cluster://user:password@seed')`; `set_many` without "
            f"a timeout (MSET per slot) and `set_many_ttl` with {TIMEOUT} s (a script per slot)",
        ),
        Contender(
            DJREDIS_ASYNC,
            async_ops,
            "same cache, `aget_many` / `aset_many` awaited in `run_until_complete`",
        ),
    ]


def check_hits(contenders: Sequence[Contender]) -> None:
    """Fail unless every contender's get_many returns the stored values (timed reads hit)."""
    for contender in contenders:
        if "get_many" not in contender.ops:
            continue
        got = contender.ops["get_many"]()
        values = list(got.values()) if isinstance(got, dict) else got
        if len(values) != MANY or values[0] != MANY_DATA[MANY_KEYS[0]]:  # type: ignore[arg-type]
            raise RuntimeError(f"{contender.name}: get_many() does not return {MANY} values")


# -- reporting --------------------------------------------------------------------------------


def _versus(results: Results, op: str, name: str, paired: bool = False) -> str:
    other = reference(op, name)
    if other is None or not results.has(op, other):
        return "—"
    ratio = results.paired_ratio(op, name, other) if paired else results.ratio(op, name, other)
    return f"{ratio:.2f}x"


def result_rows(results: Results) -> list[list[str]]:
    """Return one row per (operation, contender): medians, range and ratios."""
    rows = []
    for op in OPERATIONS:
        for name in ORDER:
            if not results.has(op, name):
                continue
            low, high = results.spread(op, name)
            rows.append(
                [
                    op,
                    name,
                    f"{results.median(op, name):.1f}",
                    f"{low:.1f}-{high:.1f}",
                    reference(op, name) or "—",
                    _versus(results, op, name),
                    _versus(results, op, name, paired=True),
                ]
            )
    return rows


RESULT_HEADERS = (
    "operation",
    "contender",
    "median µs/op",
    "range over rounds",
    "compared with",
    "ratio",
    "ratio (paired)",
)
RESULT_ALIGN = "llrrlrr"


def target_rows(results: Results, code: bool = False) -> list[list[str]]:
    """Return one row per target: djredis vs RedisCluster, the limit, MET or NOT MET."""
    rows = []
    for op, (limit, reference) in TARGETS.items():
        ratio = results.ratio(op, DJREDIS, RAW)
        rows.append(
            [
                (f"`{op}`" if code else op) + f" ({MANY} keys)",
                f"{results.median(op, DJREDIS):.1f} µs",
                f"{results.median(op, RAW):.1f} µs ({reference})",
                f"{ratio:.3f}x",
                f"{results.paired_ratio(op, DJREDIS, RAW):.3f}x",
                f"≤ {limit}x",
                "MET" if ratio <= limit else "NOT MET",
            ]
        )
    return rows


TARGET_HEADERS = ("operation", "djredis", "redis-py", "ratio", "paired", "target", "status")
TARGET_ALIGN = "lrrrrrl"


def method_text(config: Config, contenders: Sequence[Contender], slots: int) -> str:
    """Return the Markdown describing what was measured and how."""
    size = len(pickle.dumps(VALUE))
    lines = [
        f"- One Redis Cluster started for the run: {PRIMARIES} primaries, no replicas, on "
        "127.0.0.1 (TCP loopback, same machine as the client), persistence off, ACL "
        "credentials on. Client and servers share the machine's CPUs: the range column "
        "shows how noisy the run was.",
        f"- {MANY} keys of a small dict each (`pickle.dumps` gives {size} bytes), in "
        f"{slots} hash slots spread over the {PRIMARIES} primaries. djredis stores "
        '`bench1:1:{item:N}` (the user key is a hash tag, README "Topologies"); redis-py '
        "gets the same layout under `bench0`, so both spread over the same slots. A command "
        "cannot mix slots in Redis Cluster, so both send one `MGET`/`MSET` per slot, "
        "grouped per node.",
        "- `get_many` reads all of them (all hits); `set_many` writes them without a "
        f"timeout (what `mset_nonatomic` does); `set_many_ttl` writes them with {TIMEOUT} s "
        "(djredis: one script per slot; redis-py: a cluster pipeline of `SET k v PX`).",
        f"- {config.rounds} interleaved rounds. In each round, for each operation, every "
        f"contender times one batch of {config.calls['get_many']} calls with "
        "`time.perf_counter_ns`; the order of the contenders rotates by one each round. "
        "The async contenders await each call with `loop.run_until_complete` on one event "
        "loop kept for the run.",
        "- The GC is collected before and disabled during each batch. Every contender is "
        f"warmed up first ({config.warm_calls['get_many']} calls per operation: connections "
        "open, slot maps loaded, scripts loaded) and checked to read hits.",
        "- Reported: the median µs/op over the rounds (and the fastest-slowest round), and "
        "the ratio of medians to the redis-py call it is compared with; `ratio (paired)` is "
        "the median of the per-round ratios. MET / NOT MET uses the ratio of medians.",
        "",
        "Contenders:",
        "",
    ]
    lines += [f"- **{c.name}**: {c.description}" for c in contenders]
    return "\n".join(lines)


def markdown_section(
    config: Config,
    contenders: Sequence[Contender],
    results: Results,
    server_version: str,
    slots: int,
) -> str:
    """Return the whole ``cluster`` section of docs/benchmarks.md."""
    return f"""{_report.section_head("Redis Cluster bulk operations", MODULE, server_version)}

### Method

{method_text(config, contenders, slots)}

### Results

{_report.markdown_table(RESULT_HEADERS, result_rows(results), RESULT_ALIGN)}

### Targets

djredis compared with redis-py's `RedisCluster` doing the same calls plus (de)serialization.

{_report.markdown_table(TARGET_HEADERS, target_rows(results, code=True), TARGET_ALIGN)}
"""


def print_results(results: Results) -> None:
    """Print the results and the targets as plain-text tables."""
    print()
    print(_report.text_table(RESULT_HEADERS, result_rows(results), RESULT_ALIGN))
    print()
    print(_report.text_table(TARGET_HEADERS, target_rows(results), TARGET_ALIGN))


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """Return the run's configuration from the command line."""
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 15)")
    parser.add_argument("--calls", type=int, help="calls per batch (default 200)")
    parser.add_argument(
        "--quick", action="store_true", help="3 rounds of small batches; leaves docs/ alone"
    )
    parser.add_argument("--no-docs", action="store_true", help="only print the results")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 15)
    calls = args.calls or (30 if args.quick else 200)
    return Config(
        rounds=rounds,
        calls=dict.fromkeys(OPERATIONS, calls),
        warm_calls=dict.fromkeys(OPERATIONS, 30),
        write_docs=not (args.quick or args.no_docs),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Start a cluster, benchmark every contender, print and document the results."""
    from djredis._routing.cluster import slot_of

    config = parse_args(argv)
    cluster = Cluster(primaries=PRIMARIES, replicas=0).start()
    loop = asyncio.new_event_loop()
    try:
        seed = cluster.primaries()[0]
        server_version = str(cluster.admin(seed).info("server")["redis_version"])
        contenders = [*raw_contenders(seed.port), async_raw_contender(seed.port, loop)]
        contenders += djredis_contenders(cluster.location, loop)
        contenders.sort(key=lambda c: ORDER.index(c.name))
        warm_up(contenders, config.warm_calls)
        check_hits(contenders)
        print(f"Timing {len(contenders)} contenders, {config.rounds} rounds...", file=sys.stderr)
        results = run_rounds(contenders, OPERATIONS, config.calls, config.rounds)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        cluster.stop()
    print_results(results)
    if config.write_docs:
        slots = len({slot_of(raw_key(key)) for key in MANY_KEYS})
        body = markdown_section(config, contenders, results, server_version, slots)
        print(f"\nWrote {_report.write_section(SECTION, body)}")


if __name__ == "__main__":
    main()
