"""Draw grouped bar charts with matplotlib's file-only Agg backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

__all__ = ["PALETTE", "grouped_bars"]

# Colour-blind-friendly (Okabe-Ito), in contender order.
PALETTE = ("#000000", "#999999", "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9")


def _offsets(count: int, width: float) -> list[float]:
    return [(i - (count - 1) / 2) * width for i in range(count)]


def grouped_bars(
    ax: Any,
    groups: Sequence[str],
    series: Sequence[str],
    value: Callable[[str, str], float | None],
    colors: Mapping[str, str],
    label: Callable[[float], str],
) -> dict[str, tuple[float, float]]:
    """Draw one bar per (group, series) that has a value, series side by side per group.

    Groups without some series close the gap instead of leaving a hole. Return each
    group's horizontal extent (left, right), e.g. for drawing per-group target lines.
    """
    widest = max(sum(value(g, s) is not None for s in series) for g in groups)
    width = 0.84 / max(widest, 1)
    extents: dict[str, tuple[float, float]] = {}
    seen: set[str] = set()
    for x, group in enumerate(groups):
        present = [(s, v) for s in series if (v := value(group, s)) is not None]
        offsets = _offsets(len(present), width)
        for (name, height), offset in zip(present, offsets, strict=True):
            bar = ax.bar(
                x + offset,
                height,
                width * 0.92,
                color=colors[name],
                label=None if name in seen else name,
            )
            seen.add(name)
            ax.bar_label(
                bar,
                labels=[label(height)],
                padding=2,
                fontsize=7,
                rotation=90,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8},
            )
        extents[group] = (x + offsets[0] - width / 2, x + offsets[-1] + width / 2)
    ax.set_xticks(range(len(groups)), groups)
    return extents
