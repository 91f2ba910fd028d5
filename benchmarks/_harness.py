"""Time contenders in interleaved rounds and summarise the rounds by their median.

A *contender* is one way of doing the benchmarked operations (a cache backend, a raw
client...). Every round times one batch per (operation, contender), visiting the
contenders in an order rotated each round, so slow drifts of the machine (thermal, other
processes, the server's memory) spread evenly over all contenders instead of favouring
whichever runs first. A contender may turn something on for its batches only (``on`` and
``off``, run around each batch): then every contender times the same objects.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Contender", "Results", "rotated", "run_rounds", "time_batch", "warm_up"]

Call = Callable[[], object]


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Contender:
    """A named way of running some of the operations (each a no-argument callable), with
    what to turn on before each of its batches and off after it."""

    name: str
    ops: dict[str, Call]
    description: str = ""
    on: Callable[[], object] = _nothing
    off: Callable[[], object] = _nothing

    def timed(self, op: str, calls: int) -> float:
        """Time one batch of ``op`` between ``on()`` and ``off()``; return µs per call."""
        self.on()
        try:
            return time_batch(self.ops[op], calls)
        finally:
            self.off()


@dataclass
class Results:
    """Per-op times in µs, one sample per round, keyed by (operation, contender name)."""

    samples: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, op: str, contender: str, us_per_op: float) -> None:
        """Record one round's µs/op for ``contender`` doing ``op``."""
        self.samples.setdefault((op, contender), []).append(us_per_op)

    def has(self, op: str, contender: str) -> bool:
        """Return whether ``contender`` was timed on ``op``."""
        return (op, contender) in self.samples

    def median(self, op: str, contender: str) -> float:
        """Return the median µs/op over the rounds."""
        return statistics.median(self.samples[(op, contender)])

    def spread(self, op: str, contender: str) -> tuple[float, float]:
        """Return the fastest and the slowest round's µs/op."""
        values = self.samples[(op, contender)]
        return min(values), max(values)

    def ratio(self, op: str, contender: str, reference: str) -> float:
        """Return the median of ``contender`` divided by the median of ``reference``."""
        return self.median(op, contender) / self.median(op, reference)

    def row(self, op: str, contender: str, reference: str, digits: int = 3) -> list[str]:
        """A table row: op, contender, median µs/op, range, ratio of medians to
        ``reference`` and the paired ratio, ratios to ``digits`` places."""
        low, high = self.spread(op, contender)
        return [
            op,
            contender,
            f"{self.median(op, contender):.1f}",
            f"{low:.1f}-{high:.1f}",
            f"{self.ratio(op, contender, reference):.{digits}f}x",
            f"{self.paired_ratio(op, contender, reference):.{digits}f}x",
        ]

    def paired_ratio(self, op: str, contender: str, reference: str) -> float:
        """Return the median over rounds of ``contender`` / ``reference`` in the same round.

        Both were timed moments apart, so a load change between rounds cancels out: a
        steadier estimate than the ratio of medians on a busy machine.
        """
        pairs = zip(self.samples[(op, contender)], self.samples[(op, reference)], strict=True)
        return statistics.median(mine / theirs for mine, theirs in pairs)


def time_batch(call: Call, calls: int) -> float:
    """Run ``call`` ``calls`` times with the GC off; return the µs per call."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in range(calls):
            call()
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return elapsed / calls / 1000


def rotated(items: Sequence[Contender], shift: int) -> list[Contender]:
    """Return ``items`` rotated left by ``shift`` (modulo their number)."""
    if not items:
        return []
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def warm_up(contenders: Sequence[Contender], calls: dict[str, int]) -> None:
    """Run every operation of every contender ``calls[op]`` times, untimed."""
    for contender in contenders:
        contender.on()
        try:
            for op, call in contender.ops.items():
                for _ in range(calls[op]):
                    call()
        finally:
            contender.off()


def run_rounds(
    contenders: Sequence[Contender],
    operations: Sequence[str],
    calls: dict[str, int],
    rounds: int,
    report_every: int = 1,
) -> Results:
    """Time every (operation, contender) once per round, in rotated order; report progress
    every ``report_every`` rounds."""
    results = Results()
    started = time.monotonic()
    for number in range(rounds):
        for op in operations:
            present = [c for c in contenders if op in c.ops]
            for contender in rotated(present, number):
                results.add(op, contender.name, contender.timed(op, calls[op]))
        if (number + 1) % report_every == 0 or number + 1 == rounds:
            elapsed = time.monotonic() - started
            print(f"  round {number + 1}/{rounds} done ({elapsed:.0f} s)", file=sys.stderr)
    return results
