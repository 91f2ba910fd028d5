"""Topology tests: replicas, Sentinel, Cluster and TLS started by the suite, and the test servers
themselves (ports that cannot collide).

Every test collected below this folder carries the ``topology_suite`` marker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.topology_suite)
