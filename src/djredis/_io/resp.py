"""Encode commands and incrementally parse replies in RESP2, for the multiplexed connection.

The parser is hiredis's ``Reader`` when hiredis is installed (djredis[hiredis]) and a small
pure-Python reader with the same ``feed()``/``gets()`` interface otherwise: ``gets()``
returns the next complete reply, or ``False`` when more bytes are needed. Error replies are
returned (not raised) as ``ReplyError`` objects, top level or nested in arrays.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["ERROR_TYPES", "PythonReader", "Reader", "ReplyError", "new_reader", "pack"]


class ReplyError(Exception):
    """An error reply (``-ERR ...``) from the pure-Python reader."""


class Reader(Protocol):
    """What djredis's connections need from a RESP reader."""

    def feed(self, data: bytes | bytearray, offset: int = 0, length: int = -1, /) -> None: ...

    def gets(self) -> Any: ...


try:  # pragma: no cover - which branch runs depends on the environment
    import hiredis

    ERROR_TYPES: tuple[type[Exception], ...] = (ReplyError, hiredis.ReplyError)

    def new_reader() -> Reader:
        """Return a hiredis reader producing bytes (no decoding)."""
        reader: Reader = hiredis.Reader()  # type: ignore[assignment]
        return reader

    def pack(args: tuple[Any, ...]) -> bytes:
        """Return one command as a RESP2 array of bulk strings (hiredis, in C)."""
        try:
            packed: bytes = hiredis.pack_command(args)
        except TypeError:  # bytearray, memoryview, a bool...: the Python packer says which
            return python_pack(args)
        return packed

except ImportError:  # pragma: no cover
    ERROR_TYPES = (ReplyError,)

    def new_reader() -> Reader:
        """Return the pure-Python reader (hiredis is not installed)."""
        return PythonReader()

    def pack(args: tuple[Any, ...]) -> bytes:
        """Return one command as a RESP2 array of bulk strings."""
        return python_pack(args)


_NOT_ENOUGH = object()


class PythonReader:
    """Incremental RESP2 parser: feed bytes, take complete replies with ``gets()``."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pos = 0

    def feed(self, data: bytes | bytearray, offset: int = 0, length: int = -1, /) -> None:
        """Append bytes received from the socket (``data[offset:offset + length]``)."""
        if self._pos and self._pos == len(self._buffer):
            self._buffer.clear()
            self._pos = 0
        end = len(data) if length < 0 else offset + length
        self._buffer += memoryview(data)[offset:end]

    def gets(self) -> Any:
        """Return the next complete reply, or ``False`` if it has not fully arrived."""
        start = self._pos
        reply = self._parse()
        if reply is _NOT_ENOUGH:
            self._pos = start
            return False
        if self._pos > 65536:  # keep the buffer from growing without bound
            del self._buffer[: self._pos]
            self._pos = 0
        return reply

    def _line(self) -> bytes | None:
        end = self._buffer.find(b"\r\n", self._pos)
        if end < 0:
            return None
        line = bytes(self._buffer[self._pos : end])
        self._pos = end + 2
        return line

    def _parse(self) -> Any:
        line = self._line()
        if line is None:
            return _NOT_ENOUGH
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return ReplyError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            if length < 0:
                return None
            end = self._pos + length
            if len(self._buffer) < end + 2:
                return _NOT_ENOUGH
            data = bytes(self._buffer[self._pos : end])
            self._pos = end + 2
            return data
        if kind == b"*":
            count = int(rest)
            if count < 0:
                return None
            items = []
            for _ in range(count):
                item = self._parse()
                if item is _NOT_ENOUGH:
                    return _NOT_ENOUGH
                items.append(item)
            return items
        raise ValueError(f"protocol error: unexpected reply type {line[:20]!r}")


def _encode(arg: Any) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, bool):
        raise TypeError("booleans cannot be sent to Redis; use int or str")
    if isinstance(arg, (int, float)):
        return repr(arg).encode()
    if isinstance(arg, (bytearray, memoryview)):
        return bytes(arg)
    raise TypeError(f"cannot send a {type(arg).__name__} to Redis")


def python_pack(args: tuple[Any, ...]) -> bytes:
    """Return one command as a RESP2 array of bulk strings (pure Python)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _encode(arg)
        parts.append(b"$%d\r\n" % len(data))
        parts.append(data)
        parts.append(b"\r\n")
    return b"".join(parts)
