"""Run Django's own session tests (``SessionTestsMixin`` and friends) against djredis.

Like the cache suite next to it (and with its rule for a missing sdist): ``_harness``
copies ``djredis_session_tests.py`` into the ``sessions_tests`` package of the installed
Django's test suite and runs Django's ``runtests.py`` on a redis-server started here.
"""

from __future__ import annotations

import re
from pathlib import Path

from . import _harness

# "test_x (package.module.Class.test_x) ... ok", or with the test's docstring on a second
# line before " ... ok"; Python < 3.11 leaves out the trailing ".test_x".
OK_LINE = re.compile(r"^(test\w*) \(([\w.]+)\)(?:\n[^\n]*?)? \.\.\. ok$", re.MULTILINE)
MODULE = _harness.HERE / "djredis_session_tests.py"
# Our class -> (Django's class whose tests it must run, the tests ours adds or replaces).
CLASSES = {
    "DjredisSessionTests": (
        "SessionTestsMixin",
        {"test_clearsessions_command_succeeds_and_keeps_live_sessions"},
    ),
    "DjredisSessionMiddlewareTests": ("SessionMiddlewareTests", set()),
    "DjredisCacheSessionTests": ("CacheSessionTests", set()),
    "DjredisCacheDBSessionTests": ("CacheDBSessionTests", set()),
}


def test_django_session_tests_pass_against_djredis_sessions_and_cache(
    django_tests: Path, redis_url: str
) -> None:
    label = _harness.install_module(django_tests, MODULE, "sessions_tests")
    relative = "sessions_tests/tests.py"
    expected: dict[str, set[str]] = {}
    for ours, (theirs, added) in CLASSES.items():
        names = _harness.class_test_names(django_tests, relative, theirs)
        if theirs == "CacheDBSessionTests" or theirs == "CacheSessionTests":
            names |= _harness.class_test_names(django_tests, relative, "SessionTestsMixin")
        expected[ours] = names | added
    assert len(expected["DjredisSessionTests"]) > 30, expected

    result = _harness.run_suite(django_tests, redis_url, label=label)
    print(result.output)

    assert result.ran is not None, "Django's runtests.py did not report a test run"
    assert result.ok, (
        f"Django's session tests failed against djredis ({result.summary or 'no summary'}): "
        f"{dict(sorted(result.problems.items()))}"
    )
    assert result.returncode == 0, f"runtests.py exited with {result.returncode}"
    passed: dict[str, set[str]] = {name: set() for name in CLASSES}
    for name, where in OK_LINE.findall(result.output):
        cls = where.removesuffix(f".{name}").rsplit(".", 1)[-1]
        if cls in passed:
            passed[cls].add(name)
    for ours, names in expected.items():
        assert passed[ours] == names, f"{ours}: missing {sorted(names - passed[ours])}"
    assert not result.skipped, f"unexpectedly skipped: {result.skipped}"
