"""Fetch Django's test suite for the installed Django and run its cache tests on djredis.

``prepare_django_tests()`` downloads the Django sdist of exactly ``django.__version__``
with pip (``--no-binary :all:``), extracts only its ``tests/`` directory into a cache
(``.ci/work/django-src-<version>/tests``, git-ignored; ``DJREDIS_DJANGO_SRC_CACHE`` picks
another parent directory) and copies our two files into it. Later runs reuse the tree.

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
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import django

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
DEFAULT_CACHE_PARENT = REPO_ROOT / ".ci" / "work"

TEST_MODULE_SOURCE = HERE / "djredis_cache_tests.py"
SETTINGS_SOURCE = HERE / "django_settings.py"
TEST_MODULE_NAME = "djredis_cache_tests"  # placed in Django's ``cache`` test package
SETTINGS_MODULE_NAME = "djredis_contract_settings"  # placed at the top of Django's tests
TEST_LABEL = f"cache.{TEST_MODULE_NAME}"
TEST_CLASS = "DjredisCacheTests"

# BaseCacheTests skips these itself when the cull/zero_cull aliases are absent, which is
# how Django runs them for its own Redis backend.
EXPECTED_SKIPS = frozenset({"test_cull", "test_zero_cull", "test_cull_delete_when_store_empty"})

DOWNLOAD_TIMEOUT = 300
SUITE_TIMEOUT = 180


class DjangoSourceUnavailable(Exception):
    """The Django sdist could not be downloaded because the package index is unreachable."""


def cache_dir(version: str = django.__version__) -> Path:
    parent = Path(os.environ.get("DJREDIS_DJANGO_SRC_CACHE") or DEFAULT_CACHE_PARENT)
    return parent / f"django-src-{version}"


def _index_url() -> str:
    return os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple/"


def _index_reachable() -> bool:
    url = _index_url().rstrip("/") + "/django/"
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return bool(response.status < 500)
    except (urllib.error.URLError, OSError):
        return False


def _download_sdist(version: str, into: Path) -> Path:
    """Download Django's sdist with pip; raise DjangoSourceUnavailable when offline."""
    into.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--no-binary", ":all:",
        "--disable-pip-version-check", "--retries", "1", "--timeout", "30",
        f"django=={version}", "-d", str(into),
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise DjangoSourceUnavailable(f"pip download timed out: {' '.join(command)}") from exc
    archives = sorted(into.glob("[Dd]jango-*.tar.gz"))
    if result.returncode == 0 and archives:
        return archives[-1]
    output = f"$ {' '.join(command)}\n{result.stdout}\n{result.stderr[-2000:]}"
    if not _index_reachable():
        raise DjangoSourceUnavailable(
            f"cannot reach the package index ({_index_url()}) to download Django {version}'s "
            f"sdist:\n{output}"
        )
    raise RuntimeError(f"pip could not download Django {version}'s sdist:\n{output}")


def _extract_tests(archive: Path, dest: Path) -> None:
    """Extract only ``<top>/tests/`` of the sdist into ``dest`` (atomically)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="tests-", dir=dest.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = []
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if len(parts) > 2 and parts[1] == "tests":
                    member.name = str(Path(*parts[2:]))
                    members.append(member)
            if not members:
                raise RuntimeError(f"{archive} has no tests/ directory")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(staging, members=members, filter="data")
            else:  # Python < 3.10.12 / 3.11.4
                tar.extractall(staging, members=members)
        try:
            staging.rename(dest)
        except OSError:
            if not (dest / "runtests.py").is_file():  # lost a race to a broken tree? retry
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _copy(source: Path, target: Path) -> None:
    """Write ``source`` over ``target`` atomically (parallel runs may share the tree)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def prepare_django_tests(version: str = django.__version__) -> Path:
    """Return Django's ``tests`` directory for ``version``, with our files copied in."""
    root = cache_dir(version)
    tests = root / "tests"
    if not ((tests / "runtests.py").is_file() and (tests / "cache" / "tests.py").is_file()):
        archives = sorted(root.glob("download/[Dd]jango-*.tar.gz"))
        archive = archives[-1] if archives else _download_sdist(version, root / "download")
        if tests.exists():
            shutil.rmtree(tests)
        _extract_tests(archive, tests)
    _copy(TEST_MODULE_SOURCE, tests / "cache" / f"{TEST_MODULE_NAME}.py")
    _copy(SETTINGS_SOURCE, tests / f"{SETTINGS_MODULE_NAME}.py")
    return tests


def base_cache_test_names(django_tests: Path) -> set[str]:
    """The ``test_*`` methods BaseCacheTests defines in Django's ``cache/tests.py``."""
    tree = ast.parse((django_tests / "cache" / "tests.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "BaseCacheTests":
            return {
                item.name
                for item in node.body
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                and item.name.startswith("test")
            }
    raise RuntimeError("cache/tests.py defines no BaseCacheTests")


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
