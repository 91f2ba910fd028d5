"""Contract tests: Django's cache and session contracts, and django-redis's, on real Redis
(standalone; with ``pytestmark = pytest.mark.topologies`` on every topology).

Every test collected below this folder carries the ``contract`` marker (``-m contract``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.contract)
