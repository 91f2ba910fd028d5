"""Run Django's own cache backend tests (``BaseCacheTests``) against djredis.

Django's test suite is not vendored: the ``django_tests`` fixture has ``_sources`` find or
download the installed Django's sdist (once), and ``_harness`` runs its ``runtests.py`` in a
subprocess on a redis-server started here. Without the sdist it fails in CI (or with
DJREDIS_REQUIRE_DJANGO_SUITE=1) and skips, saying why, elsewhere.

By hand, with Django's own output: ``python scripts/django_contract.py [-k test_touch]``.
"""

from __future__ import annotations

from pathlib import Path

from . import _harness


def test_django_base_cache_tests_pass_against_djredis(django_tests: Path, redis_url: str) -> None:
    expected = _harness.base_cache_test_names(django_tests)
    assert len(expected) > 40, f"BaseCacheTests looks wrong: {sorted(expected)}"

    result = _harness.run_suite(django_tests, redis_url)
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
