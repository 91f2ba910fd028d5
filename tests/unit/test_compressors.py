"""Prove the built-in compressors, every COMPRESSOR spelling we accept, and ACCEPT_COMPRESSORS."""

from __future__ import annotations

import sys
import threading
import zlib
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from djredis.compressors import (
    Compressor,
    GzipCompressor,
    Lz4Compressor,
    LzmaCompressor,
    ZlibCompressor,
    ZstdCompressor,
    resolve_accepted_compressors,
    resolve_compressor,
)

SETTING = "CACHES['default']['OPTIONS']['COMPRESSOR']"
BUILTINS: list[type[Any]] = [
    ZlibCompressor,
    GzipCompressor,
    LzmaCompressor,
    Lz4Compressor,
    ZstdCompressor,
]
DATA = b"the quick brown fox jumps over the lazy dog " * 100


class ReverseCompressor:
    """A custom compressor importable by dotted path."""

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data)[::-1]

    def decompress(self, data: bytes | memoryview) -> bytes:
        return zlib.decompress(bytes(data)[::-1])


class OptionsCompressor(ReverseCompressor):
    """Shaped like a django-redis compressor: the constructor takes the OPTIONS dict."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options


def test_builtin_format_ids_are_stable() -> None:
    # These numbers are written into every compressed value; changing one strands data.
    assert [cls.format_id for cls in BUILTINS] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("cls", BUILTINS)
def test_builtin_compressor_round_trips_and_shrinks(cls: type[Compressor]) -> None:
    compressor = cls()
    packed = compressor.compress(DATA)
    assert len(packed) < len(DATA)
    assert compressor.decompress(packed) == DATA


@pytest.mark.parametrize("cls", BUILTINS)
def test_builtin_compressor_reads_from_memoryview(cls: type[Compressor]) -> None:
    compressor = cls()
    stored = b"#" + compressor.compress(DATA)
    assert compressor.decompress(memoryview(stored)[1:]) == DATA


@pytest.mark.parametrize(("cls", "level"), [(c, 1) for c in BUILTINS])
def test_level_can_be_chosen(cls: Any, level: int) -> None:
    compressor = cls(level=level)
    assert compressor.level == level
    assert cls().decompress(compressor.compress(DATA)) == DATA


def test_gzip_output_is_deterministic() -> None:
    # No timestamp in the header, so equal values are equal bytes in Redis.
    assert GzipCompressor().compress(DATA) == GzipCompressor().compress(DATA)


def test_zstd_compressor_is_safe_to_share_between_threads() -> None:
    compressor = ZstdCompressor()
    payloads = [bytes([i]) * 5000 + DATA for i in range(8)]
    failures: list[int] = []

    def work(i: int) -> None:
        for _ in range(50):
            if compressor.decompress(compressor.compress(payloads[i])) != payloads[i]:
                failures.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


ACCEPT = "CACHES['default']['OPTIONS']['ACCEPT_COMPRESSORS']"


def test_accepted_compressors_are_builtins_named_in_a_list() -> None:
    accepted = resolve_accepted_compressors(["zlib", "LZ4", "zstd"], setting=ACCEPT)
    assert [type(c) for c in accepted] == [ZlibCompressor, Lz4Compressor, ZstdCompressor]
    assert resolve_accepted_compressors(None, setting=ACCEPT) == []
    assert resolve_accepted_compressors([], setting=ACCEPT) == []


@pytest.mark.parametrize(
    "spec",
    [
        "zlib",
        ["zlip"],
        ["none"],
        [None],
        ["djredis.compressors.ZlibCompressor"],
        ["tests.unit.test_compressors.ReverseCompressor"],
    ],
)
def test_accepting_anything_but_builtin_names_is_improperly_configured(spec: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"ACCEPT_COMPRESSORS.*'gzip', 'lz4'"):
        resolve_accepted_compressors(spec, setting=ACCEPT)


def test_accepting_a_compressor_whose_library_is_missing_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(ImproperlyConfigured, match=r"djredis\[zstd\]"):
        resolve_accepted_compressors(["zstd"], setting=ACCEPT)


RESOLVES_TO: list[tuple[object, type[Any] | None]] = [
    (None, None),
    ("none", None),
    ("None", None),
    ("identity", None),
    ("django_redis.compressors.identity.IdentityCompressor", None),
    ("zlib", ZlibCompressor),
    ("ZLIB", ZlibCompressor),
    ("gzip", GzipCompressor),
    ("lzma", LzmaCompressor),
    ("lz4", Lz4Compressor),
    ("zstd", ZstdCompressor),
    ("djredis.compressors.ZlibCompressor", ZlibCompressor),
    ("djredis.compressors.GzipCompressor", GzipCompressor),
    ("djredis.compressors.LzmaCompressor", LzmaCompressor),
    ("djredis.compressors.Lz4Compressor", Lz4Compressor),
    ("djredis.compressors.ZstdCompressor", ZstdCompressor),
    ("django_redis.compressors.zlib.ZlibCompressor", ZlibCompressor),
    ("django_redis.compressors.gzip.GzipCompressor", GzipCompressor),
    ("django_redis.compressors.lzma.LzmaCompressor", LzmaCompressor),
    ("django_redis.compressors.lz4.Lz4Compressor", Lz4Compressor),
    ("django_redis.compressors.zstd.ZStdCompressor", ZstdCompressor),
    (ZstdCompressor, ZstdCompressor),
    ("tests.unit.test_compressors.ReverseCompressor", ReverseCompressor),
    (ReverseCompressor, ReverseCompressor),
]


@pytest.mark.parametrize(("spec", "expected"), RESOLVES_TO)
def test_resolve_compressor_accepts_every_documented_spelling(
    spec: object, expected: type[Any] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # django_redis paths must map without importing django_redis (it may not be installed).
    monkeypatch.setitem(sys.modules, "django_redis", None)
    resolved = resolve_compressor(spec, setting=SETTING)
    if expected is None:
        assert resolved is None
    else:
        assert type(resolved) is expected


def lookalike(path: str) -> type[Any]:
    """Return a class that claims to live at ``path``, like one imported from django_redis."""
    module, _, name = path.rpartition(".")
    return type(name, (ReverseCompressor,), {"__module__": module})


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("django_redis.compressors.zstd.ZStdCompressor", ZstdCompressor),
        ("django_redis.compressors.identity.IdentityCompressor", None),
    ],
)
def test_resolve_compressor_maps_django_redis_class_objects_to_ours(
    path: str, expected: type[Any] | None
) -> None:
    resolved = resolve_compressor(lookalike(path), setting=SETTING)
    assert (None if resolved is None else type(resolved)) is expected


def test_resolve_compressor_returns_an_instance_as_given() -> None:
    instance = ZlibCompressor(level=9)
    assert resolve_compressor(instance, setting=SETTING) is instance


def test_resolve_compressor_passes_options_to_django_redis_style_classes() -> None:
    resolved = resolve_compressor("tests.unit.test_compressors.OptionsCompressor", setting=SETTING)
    assert isinstance(resolved, OptionsCompressor)
    assert resolved.options == {}


BAD_SPECS = [
    pytest.param("zstandard", "not a known compressor", id="library-name-not-short-name"),
    pytest.param("lz5", "did you mean 'lz4'", id="typo-short-name"),
    pytest.param(
        "django_redis.compressors.zstd.ZstdCompressor",
        "did you mean 'django_redis.compressors.zstd.ZStdCompressor'",
        id="typo-django-redis-path",
    ),
    pytest.param(
        "tests.unit.test_compressors.Nope", "could not be imported", id="missing-attribute"
    ),
    pytest.param("tests.unit.test_compressors.SETTING", "not a compressor", id="path-to-a-string"),
    pytest.param(object(), "not a compressor", id="instance-without-methods"),
    pytest.param(True, "not a compressor", id="bool"),
]


@pytest.mark.parametrize(("spec", "reason"), BAD_SPECS)
def test_resolve_compressor_names_the_setting_when_the_value_is_wrong(
    spec: object, reason: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        resolve_compressor(spec, setting=SETTING)
    message = str(caught.value)
    assert SETTING in message
    assert repr(spec) in message
    assert reason in message


@pytest.mark.parametrize(
    ("spec", "modules", "extra"),
    [
        ("lz4", ["lz4", "lz4.frame"], "lz4"),
        ("django_redis.compressors.lz4.Lz4Compressor", ["lz4", "lz4.frame"], "lz4"),
        ("zstd", ["zstandard"], "zstd"),
        (ZstdCompressor, ["zstandard"], "zstd"),
    ],
)
def test_missing_library_names_the_extra_to_install(
    spec: object, modules: list[str], extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImproperlyConfigured, match=rf"pip install 'djredis\[{extra}\]'") as caught:
        resolve_compressor(spec, setting=SETTING)
    assert SETTING in str(caught.value)
