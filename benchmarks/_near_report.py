"""Constants and reporting of ``benchmarks.near_cache``: tables, targets, chart, section."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import _report
from ._asgi import WrkResult
from ._charts import PALETTE, grouped_bars
from ._harness import Results

MODULE = "benchmarks.near_cache"
SECTION = "near-cache"
CHART = _report.DOCS_DIR / "benchmarks-near-cache.png"
NEAR, DJREDIS, LOCMEM, REDIS_PY_CSC = (
    "djredis + near-cache",
    "djredis",
    "Django locmem",
    "redis-py client-side cache",
)
GET, AGET = "get (sync)", "aget (async)"
VIEW = "ASGI request, 5 hot aget (in process)"
IN_PROCESS_CEILING = "no cache (ceiling)"
VALUE = {"id": 1, "name": "benchmark value", "tags": ["a", "b", "c"], "score": 12.5}
SITE_MODES = {NEAR: "near", DJREDIS: "plain", "no cache (ceiling)": "none"}
CONCURRENCY = 50


@dataclass(frozen=True)
class Config:
    rounds: int
    calls: int
    writes: int
    asgi_rounds: int
    asgi_seconds: int
    write_docs: bool


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _med(values: Sequence[float]) -> float:
    return statistics.median(values)


def micro_rows(results: Results) -> list[list[str]]:
    rows = []
    for op in (GET, AGET, VIEW):
        for name in (NEAR, DJREDIS, LOCMEM, REDIS_PY_CSC, IN_PROCESS_CEILING):
            if results.has(op, name):
                low, high = results.spread(op, name)
                rows.append([op, name, f"{results.median(op, name):.2f}",
                             f"{low:.2f}-{high:.2f}"])  # fmt: skip
    return rows


def staleness_rows(staleness: dict[str, list[float]]) -> list[list[str]]:
    return [
        [
            name,
            str(len(v)),
            f"{percentile(v, 0.5):.2f}",
            f"{percentile(v, 0.99):.2f}",
            f"{max(v):.2f}",
        ]
        for name, v in staleness.items()
    ]


ASGI_HEADERS = ("contender", "req/s", "p50 ms", "p99 ms", "local reads")


def asgi_rows(
    samples: dict[str, list[WrkResult]], local: dict[str, list[float]]
) -> list[list[str]]:
    return [
        [
            name,
            f"{_med([r.requests_per_second for r in s]):.0f}",
            f"{_med([r.p50_ms for r in s]):.2f}",
            f"{_med([r.p99_ms for r in s]):.2f}",
            f"{_med(local[name]):.1%}" if name in local else "-",
        ]
        for name, s in samples.items()
    ]


def target_rows(
    results: Results, staleness: dict[str, list[float]], samples: dict[str, list[WrkResult]]
) -> list[list[str]]:
    def status(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    sync_locmem = results.ratio(GET, NEAR, LOCMEM)
    async_locmem = results.median(AGET, NEAR) / results.median(GET, LOCMEM)
    sync_faster = results.ratio(GET, DJREDIS, NEAR)
    async_faster = results.ratio(AGET, DJREDIS, NEAR)
    paired_sync = results.paired_ratio(GET, DJREDIS, NEAR)
    paired_async = results.paired_ratio(AGET, DJREDIS, NEAR)
    rows = [
        ["hot get: near-cache / locmem get (sync)", f"{sync_locmem:.2f}x", "≤ 2x",
         status(sync_locmem <= 2)],
        ["hot aget: near-cache aget / locmem get (sync; locmem has no native aget)",
         f"{async_locmem:.2f}x", "≤ 2x", status(async_locmem <= 2)],
        ["hot get: djredis without / with near-cache (sync; paired rounds: "
         f"{paired_sync:.1f}x)", f"{sync_faster:.1f}x", "≥ 10x", status(sync_faster >= 10)],
        ["hot aget: djredis without / with near-cache (async; paired rounds: "
         f"{paired_async:.1f}x)", f"{async_faster:.1f}x", "≥ 10x", status(async_faster >= 10)],
    ]  # fmt: skip
    view_gain = results.ratio(VIEW, DJREDIS, NEAR)
    view_paired = results.paired_ratio(VIEW, DJREDIS, NEAR)
    rows.append(
        [
            "ASGI request in process: µs without / with near-cache (paired rounds: "
            f"{view_paired:.2f}x)",
            f"{view_gain:.2f}x",
            "> 1x",
            status(view_gain > 1),
        ]
    )
    for name, values in staleness.items():
        p99 = percentile(values, 0.99)
        rows.append([f"staleness p99, {name}", f"{p99:.2f} ms", "≤ 5 ms", status(p99 <= 5)])
    if samples:
        near = _med([r.requests_per_second for r in samples[NEAR]])
        plain = _med([r.requests_per_second for r in samples[DJREDIS]])
        paired = _med(
            [
                a.requests_per_second / b.requests_per_second
                for a, b in zip(samples[NEAR], samples[DJREDIS], strict=True)
            ]
        )
        rows.append(
            [
                f"ASGI 5 hot keys: req/s with / without near-cache (paired rounds: {paired:.2f}x)",
                f"{near / plain:.2f}x",
                "> 1x",
                status(near > plain),
            ]
        )
        ceiling = _med([r.requests_per_second for r in samples["no cache (ceiling)"]])
        rows.append(["ASGI 5 hot keys: req/s with near-cache / no-cache ceiling",
                     f"{near / ceiling:.2f}x", "(reported)", "-"])  # fmt: skip
    return rows


def draw_chart(
    results: Results, staleness: dict[str, list[float]], samples: dict[str, list[WrkResult]],
    path: Path,
) -> Path:  # fmt: skip
    import matplotlib.pyplot as plt

    colors = dict(
        zip((NEAR, DJREDIS, LOCMEM, REDIS_PY_CSC, *SITE_MODES), PALETTE[2:], strict=False)
    )
    colors["no cache (ceiling)"] = PALETTE[1]
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(14, 5), constrained_layout=True)

    def us(op: str, name: str) -> float | None:
        return results.median(op, name) if results.has(op, name) else None

    grouped_bars(left, [GET, AGET], [NEAR, DJREDIS, LOCMEM, REDIS_PY_CSC], us, colors,
                 lambda v: f"{v:.1f}")  # fmt: skip
    left.set_yscale("log")
    left.set_ylabel("µs per hot-key read (median, log scale)")
    left.set_title("Hot-key read: lower is better")
    left.legend(fontsize=8)
    names = list(staleness)
    middle.bar(range(len(names)), [percentile(staleness[n], 0.99) for n in names],
               color=PALETTE[2], label="p99")  # fmt: skip
    middle.bar(range(len(names)), [percentile(staleness[n], 0.5) for n in names],
               color=PALETTE[3], label="p50")  # fmt: skip
    middle.axhline(5, color="#D55E00", linestyle="dashed", linewidth=1.5, label="target p99")
    middle.set_xticks(range(len(names)), [n.replace(", ", "\n") for n in names], fontsize=8)
    middle.set_ylabel("ms from write completed to first local read of it")
    middle.set_title("Staleness after another process writes")
    middle.legend(fontsize=8)
    if samples:
        modes = list(samples)
        right.bar(range(len(modes)),
                  [_med([r.requests_per_second for r in samples[m]]) for m in modes],
                  color=[colors[m] for m in modes])  # fmt: skip
        right.set_xticks(range(len(modes)), [m.replace(" + ", "\n+ ") for m in modes], fontsize=8)
        right.set_ylabel("requests/s (median)")
        right.set_title("ASGI view awaiting 5 hot keys (uvicorn, wrk)")
    for ax in (left, middle, right):
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(
    results: Results, staleness: dict[str, list[float]], samples: dict[str, list[WrkResult]],
    local: dict[str, list[float]], config: Config, version: str,
) -> str:  # fmt: skip
    csc = (
        "measured above"
        if results.has(GET, REDIS_PY_CSC)
        else f"**not measured**: it needs Redis ≥ 7.4 and this machine runs {version} (Debian "
        "12's package; no newer server was available through apt or pip)"
    )
    parts = [
        _report.section_head("Near-cache", MODULE, version),
        "",
        "The machine was shared: 2 CPUs, with other work running during the run.",
        "",
        "### Method",
        "",
        f"- Hot-key read: one key holding a small dict, read {config.calls} times per batch, "
        f"{config.rounds} interleaved rounds with the order rotated, GC off during a batch; "
        "medians. The near-cache is warmed up and healthy first. `aget` runs on one event "
        "loop; Django's locmem has no native `aget` (it runs `get` in a thread), so the async "
        "target compares with locmem's sync `get`.",
        f"- redis-py's client-side cache: {csc}.",
        f"- Staleness: a second process writes a key {config.writes} times at random 2-12 ms "
        "gaps with redis-py and reports when each `SET` returned; this process reads the key "
        "through the near-cache and notes when it first sees each value. Reads every 0.2 ms "
        "(`polling reader`) or back to back (`busy reader`: the reading thread holds the GIL, "
        "so the invalidation thread waits for Python's switch interval, 5 ms).",
        f"- ASGI: uvicorn (1 worker), wrk with {CONCURRENCY} connections for "
        f"{config.asgi_seconds} s after a 1 s warm-up, {config.asgi_rounds} rounds rotated; "
        "medians. The view awaits five `cache.aget` of hot keys; the ceiling serves the same "
        "response without touching a cache. `local reads` is the share of the near-cache "
        "site's reads answered locally during the run (from `cache.near_stats()`). On a "
        "shared 2-CPU machine wrk, uvicorn and redis-server compete with other work, and one "
        "run of the same contender swings by up to 2x: the in-process row (Django's ASGI "
        "application called directly, interleaved rounds) is the steadier comparison.",
        "",
        "### Hot-key read (µs)",
        "",
        _report.markdown_table(
            ("operation", "contender", "median µs", "range over rounds"),
            micro_rows(results),
            "llrr",
        ),
        "",
        "### Staleness after another process writes (ms)",
        "",
        _report.markdown_table(
            ("reader", "writes seen", "p50", "p99", "max"), staleness_rows(staleness), "lrrrr"
        ),
    ]
    if samples:
        parts += ["", "### ASGI view reading 5 hot keys", "",
                  _report.markdown_table(ASGI_HEADERS, asgi_rows(samples, local),
                                         "lrrrr")]  # fmt: skip
    parts += [
        "",
        "### Targets",
        "",
        _report.markdown_table(
            ("target", "measured", "required", "status"),
            target_rows(results, staleness, samples),
            "lrrl",
        ),
        "",
        f"![near-cache benchmark]({CHART.name})",
    ]
    return "\n".join(parts) + "\n"
