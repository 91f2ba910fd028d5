"""Find the sdist of exactly ``django.__version__`` and lay its ``tests/`` out for runtests.py.

Where the sources come from, first found wins:

1. the tree extracted by an earlier run (``.ci/work/django-src-<version>/tests``, git-ignored;
   ``DJREDIS_DJANGO_SRC_CACHE`` picks another parent directory);
2. an sdist kept by an earlier download: in the sdist cache (``DJREDIS_DJANGO_SDIST_CACHE``,
   else ``$XDG_CACHE_HOME/djredis/django-sdist``, else ``~/.cache/djredis/django-sdist``),
   which outlives a clone, so a fresh CI checkout on the same machine needs no network;
3. the local places pip is configured with (``pip config list`` and ``PIP_*``): find-links
   directories and ``file://`` simple indexes, read directly;
4. ``pip download`` through pip's configured indexes (its own HTTP cache included), into
   the sdist cache.

When none has it, ``DjangoSourceUnavailable`` says what was tried. The ``django_tests``
fixture (conftest.py) turns that into a failure where ``suite_required()`` (``CI`` is set, or
``DJREDIS_REQUIRE_DJANGO_SUITE=1`` as ``.ci/run`` sets it) and into a skip naming the
reason elsewhere; ``DJREDIS_REQUIRE_DJANGO_SUITE=0`` opts a run out explicitly.
"""

from __future__ import annotations

import html.parser
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import django

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
DEFAULT_CACHE_PARENT = REPO_ROOT / ".ci" / "work"
DOWNLOAD_TIMEOUT = 300
REQUIRE_VARIABLE = "DJREDIS_REQUIRE_DJANGO_SUITE"


class DjangoSourceUnavailable(Exception):
    """No local copy of Django's sdist, and pip could not download it."""


def cache_dir(version: str = django.__version__) -> Path:
    """Where the extracted ``tests/`` of ``version`` lives."""
    parent = Path(os.environ.get("DJREDIS_DJANGO_SRC_CACHE") or DEFAULT_CACHE_PARENT)
    return parent / f"django-src-{version}"


def sdist_cache() -> Path:
    """Where downloaded sdists are kept, outside the clone."""
    if explicit := os.environ.get("DJREDIS_DJANGO_SDIST_CACHE"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "djredis" / "django-sdist"


def _sdist_names(version: str) -> tuple[str, str]:
    return f"django-{version}.tar.gz", f"Django-{version}.tar.gz"  # older sdists: capital D


def _in_directory(directory: Path, version: str) -> Path | None:
    for name in _sdist_names(version):
        if (directory / name).is_file():
            return directory / name
    return None


def _pip_setting(key: str) -> list[str]:
    """The values of one pip option (``index-url``, ``extra-index-url``, ``find-links``) from
    pip's environment variables and its configuration files."""
    values = os.environ.get(f"PIP_{key.upper().replace('-', '_')}", "").split()
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for line in listed.stdout.splitlines():
        name, _, value = line.partition("=")
        if name.rsplit(".", 1)[-1] == key:
            values += value.strip().strip("'\"").split()
    return list(dict.fromkeys(values))


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value for name, value in attrs if tag == "a" and name == "href" and value]


def _local_path(location: str) -> Path | None:
    """``location`` as a local path, when it is one (a path or a ``file://`` URL)."""
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    return Path(location) if not parsed.scheme else None


def _in_simple_index(index: Path, version: str) -> Path | None:
    """The sdist a local PEP 503 index links to from its ``django/`` page, if any."""
    page = index / "django" / "index.html"
    if not page.is_file():
        return None
    links = _Links()
    links.feed(page.read_text(encoding="utf-8", errors="replace"))
    for href in links.hrefs:
        target = (page.parent / urllib.parse.unquote(href.split("#", 1)[0])).resolve()
        if target.name in _sdist_names(version) and target.is_file():
            return target
    return None


def _from_pip_locations(version: str) -> Path | None:
    for location in _pip_setting("find-links"):
        directory = _local_path(location)
        if directory and (found := _in_directory(directory, version)):
            return found
    for location in _pip_setting("index-url") + _pip_setting("extra-index-url"):
        index = _local_path(location)
        if index and (found := _in_simple_index(index, version)):
            return found
    return None


def _download_sdist(version: str, into: Path) -> Path:
    """Download Django's sdist with pip, through whatever indexes pip is configured with."""
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
    if result.returncode == 0 and (found := _in_directory(into, version)):
        return found
    raise DjangoSourceUnavailable(
        f"no local copy of Django {version}'s sdist (looked in {cache_dir(version)}, "
        f"{sdist_cache()} and pip's find-links and file:// indexes), and pip could not "
        f"download it:\n$ {' '.join(command)}\n{result.stdout[-1000:]}\n{result.stderr[-2000:]}"
    )


def find_sdist(version: str = django.__version__) -> Path:
    """Return a local copy of Django ``version``'s sdist, downloading it if need be."""
    for directory in (cache_dir(version) / "download", sdist_cache()):
        if found := _in_directory(directory, version):
            return found
    return _from_pip_locations(version) or _download_sdist(version, sdist_cache())


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


def django_tests_dir(version: str = django.__version__) -> Path:
    """Return Django ``version``'s ``tests`` directory, extracting it on first use."""
    tests = cache_dir(version) / "tests"
    if not ((tests / "runtests.py").is_file() and (tests / "cache" / "tests.py").is_file()):
        archive = find_sdist(version)
        if tests.exists():
            shutil.rmtree(tests)
        _extract_tests(archive, tests)
    return tests


def suite_required(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether a missing Django test suite is a failure: in CI, or when asked for."""
    explicit = environ.get(REQUIRE_VARIABLE)
    if explicit is not None and explicit.strip() != "":
        return explicit.strip().lower() not in {"0", "false", "no"}
    return environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}
