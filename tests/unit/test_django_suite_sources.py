"""Where the Django contract suite finds Django's sdist, and when its absence is a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.django_contract import _sources

VERSION = "9.9.9"  # a Django release that does not exist: only the local copies can match
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DJREDIS_DJANGO_SRC_CACHE", str(tmp_path / "trees"))
    monkeypatch.setenv("DJREDIS_DJANGO_SDIST_CACHE", str(tmp_path / "sdists"))
    return tmp_path


def test_an_sdist_in_a_find_links_directory_of_pip_is_used(
    empty_caches: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    links = empty_caches / "links"
    links.mkdir()
    (links / f"django-{VERSION}.tar.gz").write_bytes(b"")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    assert _sources.find_sdist(VERSION) == links / f"django-{VERSION}.tar.gz"


def test_an_sdist_in_a_local_simple_index_of_pip_is_used(
    empty_caches: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = empty_caches / "index"
    (index / "simple" / "django").mkdir(parents=True)
    (index / "files").mkdir()
    (index / "files" / f"Django-{VERSION}.tar.gz").write_bytes(b"")
    (index / "simple" / "django" / "index.html").write_text(
        f'<a href="../../files/Django-{VERSION}.tar.gz#sha256=00">Django-{VERSION}.tar.gz</a>'
    )
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", (index / "simple").as_uri())
    assert _sources.find_sdist(VERSION) == index / "files" / f"Django-{VERSION}.tar.gz"


def test_an_sdist_kept_by_an_earlier_download_is_used_first(empty_caches: Path) -> None:
    kept = _sources.sdist_cache()
    kept.mkdir()
    (kept / f"django-{VERSION}.tar.gz").write_bytes(b"")
    assert _sources.find_sdist(VERSION) == kept / f"django-{VERSION}.tar.gz"


@pytest.mark.parametrize(
    ("environ", "required"),
    [
        ({}, False),
        ({"CI": "true"}, True),
        ({"CI": ""}, False),
        ({"DJREDIS_REQUIRE_DJANGO_SUITE": "1"}, True),
        ({"CI": "true", "DJREDIS_REQUIRE_DJANGO_SUITE": "0"}, False),
    ],
)
def test_a_missing_suite_fails_in_ci_or_when_required(
    environ: dict[str, str], required: bool
) -> None:
    assert _sources.suite_required(environ) is required


def test_ci_requires_the_django_suite() -> None:
    assert "export DJREDIS_REQUIRE_DJANGO_SUITE=1" in (ROOT / ".ci" / "run").read_text()
