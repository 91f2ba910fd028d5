"""Shrink serialized values before they go to Redis, and expand them on the way back.

Each built-in compressor has a ``format_id`` that the codec stores with every compressed
value; a cache expands only the formats its settings allow (COMPRESSOR, and
ACCEPT_COMPRESSORS while migrating: ``resolve_accepted_compressors``). zlib, gzip and lzma
come with Python; lz4 and zstd need the ``djredis[lz4]`` and ``djredis[zstd]`` extras.
"""

from __future__ import annotations

import gzip
import lzma
import threading
import zlib
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

from djredis._config.resolve import Kind, resolve_accepted, resolve_component

__all__ = [
    "Compressor",
    "GzipCompressor",
    "Lz4Compressor",
    "LzmaCompressor",
    "ZlibCompressor",
    "ZstdCompressor",
    "resolve_accepted_compressors",
    "resolve_compressor",
]


class Compressor(Protocol):
    """What the cache needs from a compressor: fewer bytes out, the same bytes back."""

    def compress(self, data: bytes) -> bytes: ...

    def decompress(self, data: bytes | memoryview) -> bytes: ...


class ZlibCompressor:
    """Compress with zlib (deflate); no extra dependency."""

    format_id: ClassVar[int] = 1

    def __init__(self, level: int = 6) -> None:
        self.level = level

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data, self.level)

    def decompress(self, data: bytes | memoryview) -> bytes:
        return zlib.decompress(data)

    def __repr__(self) -> str:
        return f"ZlibCompressor(level={self.level})"


class GzipCompressor:
    """Compress to the gzip format; no extra dependency."""

    format_id: ClassVar[int] = 2

    # gzip's own default (9) is much slower than 6 for a few percent less output.
    def __init__(self, level: int = 6) -> None:
        self.level = level

    def compress(self, data: bytes) -> bytes:
        # mtime=0 so equal values compress to equal bytes.
        return gzip.compress(data, self.level, mtime=0)

    def decompress(self, data: bytes | memoryview) -> bytes:
        return gzip.decompress(data)

    def __repr__(self) -> str:
        return f"GzipCompressor(level={self.level})"


class LzmaCompressor:
    """Compress with LZMA (xz): smallest output of the stdlib codecs, slowest to write."""

    format_id: ClassVar[int] = 3

    # Presets above 3 switch to a match finder that, on cache-sized values, takes 2-10
    # times longer for about 10% smaller output; lzma's own default is 6.
    def __init__(self, level: int = 1) -> None:
        self.level = level

    def compress(self, data: bytes) -> bytes:
        return lzma.compress(data, preset=self.level)

    def decompress(self, data: bytes | memoryview) -> bytes:
        return lzma.decompress(data)

    def __repr__(self) -> str:
        return f"LzmaCompressor(level={self.level})"


class Lz4Compressor:
    """Compress to LZ4 frames: very fast, moderate ratio (``pip install 'djredis[lz4]'``)."""

    format_id: ClassVar[int] = 4

    def __init__(self, level: int = 0) -> None:
        import lz4.frame

        self.level = level
        self._compress: Callable[..., bytes] = lz4.frame.compress
        self._decompress: Callable[..., bytes] = lz4.frame.decompress

    def compress(self, data: bytes) -> bytes:
        return self._compress(data, compression_level=self.level)

    def decompress(self, data: bytes | memoryview) -> bytes:
        return self._decompress(data)

    def __repr__(self) -> str:
        return f"Lz4Compressor(level={self.level})"


class ZstdCompressor:
    """Compress with Zstandard: fast, good ratio (``pip install 'djredis[zstd]'``)."""

    format_id: ClassVar[int] = 5

    def __init__(self, level: int = 3) -> None:
        import zstandard

        self.level = level
        self._zstd: Any = zstandard
        # zstandard contexts must not be shared between threads, and building one per call
        # costs more than compressing a small value, so each thread keeps its own pair.
        self._local = threading.local()

    def compress(self, data: bytes) -> bytes:
        try:
            context = self._local.compressor
        except AttributeError:
            context = self._local.compressor = self._zstd.ZstdCompressor(level=self.level)
        compressed: bytes = context.compress(data)  # zstandard has no type hints
        return compressed

    def decompress(self, data: bytes | memoryview) -> bytes:
        try:
            context = self._local.decompressor
        except AttributeError:
            context = self._local.decompressor = self._zstd.ZstdDecompressor()
        plain: bytes = context.decompress(data)
        return plain

    def __repr__(self) -> str:
        return f"ZstdCompressor(level={self.level})"


_SHORT_NAMES: Mapping[str, type[Any] | None] = {
    "none": None,
    "identity": None,
    "zlib": ZlibCompressor,
    "gzip": GzipCompressor,
    "lzma": LzmaCompressor,
    "lz4": Lz4Compressor,
    "zstd": ZstdCompressor,
}

# Paths copied from django-redis settings map to our classes without importing
# django_redis: it need not be installed, and values must carry our format ids.
_KNOWN_PATHS: Mapping[str, type[Any] | None] = {
    "djredis.compressors.ZlibCompressor": ZlibCompressor,
    "djredis.compressors.GzipCompressor": GzipCompressor,
    "djredis.compressors.LzmaCompressor": LzmaCompressor,
    "djredis.compressors.Lz4Compressor": Lz4Compressor,
    "djredis.compressors.ZstdCompressor": ZstdCompressor,
    "django_redis.compressors.identity.IdentityCompressor": None,
    "django_redis.compressors.zlib.ZlibCompressor": ZlibCompressor,
    "django_redis.compressors.gzip.GzipCompressor": GzipCompressor,
    "django_redis.compressors.lzma.LzmaCompressor": LzmaCompressor,
    "django_redis.compressors.lz4.Lz4Compressor": Lz4Compressor,
    "django_redis.compressors.zstd.ZStdCompressor": ZstdCompressor,
}

_KIND = Kind(
    noun="compressor",
    methods=("compress", "decompress"),
    short_names=_SHORT_NAMES,
    paths=_KNOWN_PATHS,
    extras={Lz4Compressor: "lz4", ZstdCompressor: "zstd"},
    accepted=(
        "None, 'none', 'zlib', 'gzip', 'lzma', 'lz4', 'zstd', or the dotted path, class or "
        "instance of an object with compress() and decompress() methods"
    ),
)


def resolve_compressor(spec: object, *, setting: str) -> Compressor | None:
    """Return the compressor ``spec`` names, or None for no compression.

    ``setting`` says where ``spec`` came from, e.g.
    ``"CACHES['default']['OPTIONS']['COMPRESSOR']"``; errors quote it.
    """
    if spec is None:
        return None
    compressor: Compressor | None = resolve_component(spec, setting=setting, kind=_KIND)
    return compressor


def resolve_accepted_compressors(spec: object, *, setting: str) -> list[Compressor]:
    """Return the built-in compressors ``spec`` names: a list of "zlib", "gzip", "lzma",
    "lz4", "zstd" (OPTIONS ``ACCEPT_COMPRESSORS``; ``None`` is the empty list).

    ``setting`` names the option for error messages.
    """
    accepted: list[Compressor] = resolve_accepted(spec, setting=setting, kind=_KIND)
    return accepted
