"""Run Django's own cache and session tests, from the installed Django's sdist, on djredis.

``prepare_django_tests()`` takes the ``tests/`` directory of exactly ``django.__version__``
from ``_sources`` (which finds or downloads the sdist once) and copies our two files into it.

``run_suite()`` runs ``tests/runtests.py --settings=djredis_contract_settings
cache.djredis_cache_tests`` in a subprocess with the Redis URL in the environment and
parses unittest's summary.

Not ported from Django's ``RedisCacheTests`` (they test the builtin backend's internals,
which djredis does not have): ``test_incr_write_connection`` (mocks
``RedisCacheClient.get_client``), ``test_cache_client_class`` (``cache._class``,
``cache._cache``), ``test_get_backend_timeout_method`` (a private helper djredis neither
overrides nor uses: it sends timeouts as PX milliseconds), ``test_get_connection_pool_index``,
``test_get_connection_pool``, ``test_get_client`` (``cache._cache``),
``test_serializer_dumps`` (``cache._cache._serializer``) and ``test_redis_pool_options``
(``cache._cache._get_connection_pool``).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import django

from . import _sources

HERE = Path(__file__).resolve().parent

TEST_MODULE_SOURCE = HERE / "djredis_cache_tests.py"
SETTINGS_SOURCE = HERE / "django_settings.py"
TEST_MODULE_NAME = "djredis_cache_tests"  # placed in Django's ``cache`` test package
SETTINGS_MODULE_NAME = "djredis_contract_settings"  # placed at the top of Django's tests
TEST_LABEL = f"cache.{TEST_MODULE_NAME}"
TEST_CLASS = "DjredisCacheTests"

# BaseCacheTests skips these itself when the cull/zero_cull aliases are absent, which is
# how Django runs them for its own Redis backend.
EXPECTED_SKIPS = frozenset({"test_cull", "test_zero_cull", "test_cull_delete_when_store_empty"})

SUITE_TIMEOUT = 180


def _copy(source: Path, target: Path) -> None:
    """Write ``source`` over ``target`` atomically (parallel runs may share the tree)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def prepare_django_tests(version: str = django.__version__) -> Path:
    """Return Django's ``tests`` directory for ``version``, with our files copied in;
    raise ``_sources.DjangoSourceUnavailable`` when its sdist cannot be had."""
    tests = _sources.django_tests_dir(version)
    _copy(TEST_MODULE_SOURCE, tests / "cache" / f"{TEST_MODULE_NAME}.py")
    _copy(SETTINGS_SOURCE, tests / f"{SETTINGS_MODULE_NAME}.py")
    return tests


def base_cache_test_names(django_tests: Path) -> set[str]:
    """The ``test_*`` methods BaseCacheTests defines in Django's ``cache/tests.py``."""
    return class_test_names(django_tests, "cache/tests.py", "BaseCacheTests")


@dataclass
class SuiteResult:
    returncode: int
    output: str
    ran: int | None = None
    ok: bool = False
    summary: str = ""
    skipped: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # test -> FAIL/ERROR/...


_RESULT_LINE = re.compile(
    r"^(test\w*) \([^)]*\)(?: \[[^\]]*\]| \([^)]*\))? \.\.\. "
    r"(ok|skipped(?: (.*))?|FAIL|ERROR|expected failure|unexpected success)$",
    re.MULTILINE,
)


def parse_output(returncode: int, output: str) -> SuiteResult:
    result = SuiteResult(returncode=returncode, output=output)
    ran = re.search(r"^Ran (\d+) tests? in ", output, re.MULTILINE)
    if ran:
        result.ran = int(ran.group(1))
    summary = re.search(r"^(OK|FAILED)(?: \((.*)\))?\s*$", output, re.MULTILINE)
    if summary:
        result.ok = summary.group(1) == "OK"
        result.summary = summary.group(0).strip()
    for name, outcome, reason in _RESULT_LINE.findall(output):
        if outcome.startswith("skipped"):
            result.skipped[name] = reason.strip("'\"")
        elif outcome != "ok":
            result.problems[name] = outcome
    for kind, name in re.findall(r"^(FAIL|ERROR): (test\w*) ", output, re.MULTILINE):
        result.problems.setdefault(name, kind)
    return result


def install_module(django_tests: Path, source: Path, package: str) -> str:
    """Copy one of our test modules into Django's test package ``package``; return its
    runtests.py label (``package.module``)."""
    _copy(source, django_tests / package / source.name)
    return f"{package}.{source.stem}"


def class_test_names(django_tests: Path, relative: str, class_name: str) -> set[str]:
    """The ``test_*`` methods a class defines in one of Django's test files."""
    tree = ast.parse((django_tests / relative).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {
                item.name
                for item in node.body
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                and item.name.startswith("test")
            }
    raise RuntimeError(f"{relative} defines no {class_name}")


def run_suite(
    django_tests: Path,
    redis_url: str,
    extra_args: tuple[str, ...] = (),
    *,
    capture: bool = True,
    timeout: float | None = SUITE_TIMEOUT,
    label: str = TEST_LABEL,
) -> SuiteResult:
    """Run our test module with Django's runtests.py; the label can be narrowed by
    passing e.g. ``-k test_touch`` in ``extra_args``."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["DJREDIS_CONTRACT_REDIS_URL"] = redis_url
    env["PYTHONUNBUFFERED"] = "1"
    command = [
        sys.executable,
        str(django_tests / "runtests.py"),
        f"--settings={SETTINGS_MODULE_NAME}",
        "--parallel=1",  # one Redis DB, and BaseCacheTests.tearDown() clears it
        "--noinput",
        "--verbosity=2",
        *extra_args,
        label,
    ]
    if not capture:
        streamed = subprocess.run(command, cwd=django_tests, env=env, timeout=timeout, check=False)
        return SuiteResult(returncode=streamed.returncode, output="")
    completed = subprocess.run(
        command,
        cwd=django_tests,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return parse_output(completed.returncode, f"$ {' '.join(command)}\n{completed.stdout}")
