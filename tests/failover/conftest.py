"""Failure tests: Redis killed, paused (SIGSTOP), restarted or misbehaving mid-traffic, and what
callers see: the resend rule, timeouts, protocol violations, cancellation.

Every test collected below this folder carries the ``failover`` marker (``-m failover``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.failover)
