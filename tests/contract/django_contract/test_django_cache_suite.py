"""Run Django's own cache backend tests (``BaseCacheTests``) against djredis.

Django's test suite is not vendored: ``_harness`` downloads the sdist of the installed
Django (once; cached under ``.ci/work/``) and runs its ``runtests.py`` in a subprocess on
a redis-server started here. Skipped only when the package index cannot be reached.

By hand, with Django's own output: ``python scripts/django_contract.py [-k test_touch]``.
"""

from __future__ import annotations

import django
import pytest

from tests._servers import RedisServer

from . import _harness


def test_django_base_cache_tests_pass_against_djredis() -> None:
    try:
        django_tests = _harness.prepare_django_tests()
    except _harness.DjangoSourceUnavailable as exc:
        pytest.skip(f"Django {django.__version__}'s test suite is unavailable offline: {exc}")
    expected = _harness.base_cache_test_names(django_tests)
    assert len(expected) > 40, f"BaseCacheTests looks wrong: {sorted(expected)}"

    server = RedisServer().start()
    try:
        result = _harness.run_suite(django_tests, server.url(0))
    finally:
        server.stop()
    print(result.output)

    assert result.ran is not None, "Django's runtests.py did not report a test run"
    assert result.ok, (
        f"Django's cache tests failed against djredis ({result.summary or 'no summary'}): "
        f"{dict(sorted(result.problems.items()))}"
    )
    assert result.returncode == 0, f"runtests.py exited with {result.returncode}"
    # BaseCacheTests, plus two of them again through the a* API (DjredisAsyncApiModelTests).
    assert result.ran == len(expected) + 2, (
        f"ran {result.ran} tests, but BaseCacheTests has {len(expected)} (+ 2 via a*)"
    )
    unexpected_skips = {
        name: reason
        for name, reason in result.skipped.items()
        if name not in _harness.EXPECTED_SKIPS
    }
    assert not unexpected_skips, f"unexpectedly skipped: {unexpected_skips}"
