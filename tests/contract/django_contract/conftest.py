"""The ``django_tests`` fixture: Django's own test suite for the installed Django, or a
failure (in CI, or with DJREDIS_REQUIRE_DJANGO_SUITE=1) or a skip saying why it is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import django
import pytest

from tests._servers import RedisServer

from . import _harness, _sources


@pytest.fixture(scope="session")
def django_tests() -> Path:
    """Django's ``tests`` directory, with our modules copied in."""
    try:
        return _harness.prepare_django_tests()
    except _sources.DjangoSourceUnavailable as exc:
        reason = f"Django {django.__version__}'s own test suite could not be had: {exc}"
        variable = _sources.REQUIRE_VARIABLE
        if _sources.suite_required():
            pytest.fail(
                f"{reason}\nRequired because CI or {variable}=1 is set ({variable}=0 opts out).",
                pytrace=False,
            )
        pytest.skip(f"{reason}\nSkipped outside CI; set {variable}=1 to make this a failure.")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A throw-away redis-server's DB 0, for Django's tests (which flush it)."""
    server = RedisServer().start()
    try:
        yield server.url(0)
    finally:
        server.stop()
