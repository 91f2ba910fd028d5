"""Site tests: the guides' snippets and the reference site, through the test client and a real
headless Chromium.

Every test collected below this folder carries the ``site`` marker (``-m site``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.site)
