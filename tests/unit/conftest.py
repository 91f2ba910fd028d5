"""Unit tests: one module at a time (RESP, codec, config, layout), with at most the standalone
test server behind them.

Every test collected below this folder carries the ``unit`` marker (``-m unit``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.unit)
