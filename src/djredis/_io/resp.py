"""Encode commands and incrementally parse replies in RESP2, for djredis's own connections.

The parser is hiredis's ``Reader`` when hiredis is installed (djredis[hiredis]) and a small
pure-Python reader with the same ``feed()``/``gets()`` interface otherwise (``new_reader``
chooses, or takes the choice of ``ServerConfig.reader``): ``gets()`` returns the next
complete reply, or ``False`` when more bytes are needed. Error replies are returned (not
raised) as ``ReplyError`` objects, top level or nested in arrays.

A reply that breaks the protocol makes ``gets()`` (and every later ``feed()``/``gets()`` on
that reader) raise ``djredis._core.errors.ProtocolError``, whichever reader is in use; nothing
else escapes. The pure-Python reader refuses:

- a type byte other than ``+ - : $ *``, including every RESP3 type (``% ~ > , # _ ( = |``):
  the connections speak RESP2, so a RESP3 reply means the stream is not what we think;
- a length that is not ``-1`` or a plain decimal number, an integer reply that is not a
  decimal 64-bit integer, a bulk string not followed by CRLF;
- a bulk string longer than 512 MiB (Redis's default ``proto-max-bulk-len``) or an array
  of more than 2**32 - 1 elements (hiredis's bound);
- arrays nested more than ``MAX_DEPTH`` = 64 deep (Redis's own replies nest at most a few
  levels; only a Lua script building deep tables gets near it).

hiredis applies its own checks (it nests up to 1024 deep, takes bulk strings of any size
and does not look at the two bytes after a bulk string), and raises ``ProtocolError`` too.
"""

from __future__ import annotations

from typing import Any, Protocol

from djredis._core.errors import ProtocolError

__all__ = [
    "ERROR_TYPES",
    "HIREDIS_INSTALLED",
    "MAX_ARRAY_LENGTH",
    "MAX_BULK_LENGTH",
    "MAX_DEPTH",
    "SCALARS",
    "PythonReader",
    "Reader",
    "ReplyError",
    "new_reader",
    "pack",
    "python_pack",
    "resp2_violation",
]

MAX_DEPTH = 64
MAX_BULK_LENGTH = 512 * 1024 * 1024
MAX_ARRAY_LENGTH = 2**32 - 1


class ReplyError(Exception):
    """An error reply (``-ERR ...``) from the pure-Python reader."""


class Reader(Protocol):
    """What djredis's connections need from a RESP reader."""

    def feed(self, data: bytes | bytearray, offset: int = 0, length: int = -1, /) -> None: ...

    def gets(self) -> Any: ...


try:  # pragma: no cover - which branch runs depends on the environment
    import hiredis

    HIREDIS_INSTALLED = True
    ERROR_TYPES: tuple[type[Exception], ...] = (ReplyError, hiredis.ReplyError)

    def _hiredis_reader() -> Reader:
        # hiredis raises the class it is given for protocol errors: the same exception
        # as the Python reader's, at no cost per reply.
        reader: Reader = hiredis.Reader(protocolError=ProtocolError)  # type: ignore[assignment]
        return reader

    def pack(args: tuple[Any, ...]) -> bytes:
        """Return one command as a RESP2 array of bulk strings (hiredis, in C)."""
        try:
            packed: bytes = hiredis.pack_command(args)
        except TypeError:  # bytearray, memoryview, a bool...: the Python packer says which
            return python_pack(args)
        return packed

except ImportError:  # pragma: no cover
    HIREDIS_INSTALLED = False
    ERROR_TYPES = (ReplyError,)

    def _hiredis_reader() -> Reader:
        raise ImportError(
            "The hiredis RESP reader was asked for, but hiredis is not installed "
            "(pip install djredis[hiredis])."
        )

    def pack(args: tuple[Any, ...]) -> bytes:
        """Return one command as a RESP2 array of bulk strings."""
        return python_pack(args)


def new_reader(kind: str | None = None) -> Reader:
    """Return a RESP2 reader producing bytes (no decoding).

    ``kind`` is ``"hiredis"`` (ImportError if it is not installed), ``"python"``, or None
    for hiredis when it is installed and the pure-Python reader otherwise.
    """
    if kind == "python" or (kind is None and not HIREDIS_INSTALLED):
        return PythonReader()
    if kind is None or kind == "hiredis":
        return _hiredis_reader()
    raise ValueError(f"unknown RESP reader {kind!r}: use 'hiredis', 'python' or None")


# The first bytes of the five RESP2 reply types: + - : $ *
_TYPES = frozenset(b"+-:$*")
# A length or integer line is a sign and at most 19 digits; a longer one is garbage, and
# is refused before its CRLF arrives rather than buffered until the socket times out.
_MAX_NUMBER_LINE = 24
# Compact the buffer only when its consumed head is this large and at least half of it, so
# every byte is moved a bounded number of times.
_COMPACT_AFTER = 65536
# A bulk string at least this long is copied out of a bytearray buffer through a memoryview
# (one copy instead of two); below it, the view costs more than the extra copy.
_VIEW_AFTER = 4096
_INT64 = range(-(2**63), 2**63)
_RESP3_TYPES = frozenset(b"%~>,#_(=|")


class PythonReader:
    """Incremental RESP2 parser: feed bytes, take complete replies with ``gets()``.

    It resumes where the previous ``gets()`` stopped instead of parsing a partial reply
    again from its start: arrays under construction wait on a stack, and the parse
    position stays at the start of the one element that has not fully arrived (a bulk
    string's header line is read again, its payload is not). So a reply costs time linear
    in its size however it is split into chunks.
    """

    __slots__ = ("_buffer", "_error", "_pos", "_scan", "_stack")

    def __init__(self) -> None:
        # bytes while replies arrive whole (the chunk itself, no copy); a bytearray that
        # grows while a reply spans several chunks.
        self._buffer: bytes | bytearray = b""
        self._pos = 0  # start of the first element not parsed yet
        self._scan = 0  # where to resume looking for the CRLF of an incomplete line
        self._stack: list[tuple[list[Any], int]] = []  # arrays being filled, and their sizes
        self._error: ProtocolError | None = None

    def feed(self, data: bytes | bytearray, offset: int = 0, length: int = -1, /) -> None:
        """Append bytes received from the socket (``data[offset:offset + length]``)."""
        if self._error is not None:
            raise ProtocolError(f"the reader already failed: {self._error}")
        whole = offset == 0 and length < 0
        buffer, pos = self._buffer, self._pos
        if pos == len(buffer):
            # Everything fed so far is consumed: the chunk becomes the buffer. A bytes chunk
            # is kept as it is; a bytearray may be reused by the caller, so it is copied.
            if whole and type(data) is bytes:
                self._buffer = data
            else:
                self._buffer = data[offset : len(data) if length < 0 else offset + length]
            self._pos = self._scan = 0
            return
        if not isinstance(buffer, bytearray):  # a reply spans chunks: grow a copy of its start
            buffer = self._buffer = bytearray(memoryview(buffer)[pos:])
            self._scan -= pos
            self._pos = 0
        elif pos >= _COMPACT_AFTER and 2 * pos >= len(buffer):
            del buffer[:pos]
            self._scan -= pos
            self._pos = 0
        if whole:
            buffer += data
        else:
            end = len(data) if length < 0 else offset + length
            buffer += memoryview(data)[offset:end]

    def gets(self) -> Any:
        """Return the next complete reply, or ``False`` if it has not fully arrived."""
        buffer, pos, stack = self._buffer, self._pos, self._stack
        scan = self._scan
        value: Any
        try:
            while True:
                eol = buffer.find(b"\r\n", scan)
                if eol < 0:
                    return self._wait(pos, max(pos, len(buffer) - 1))
                kind = buffer[pos]
                if kind == 36:  # $: bulk string
                    digits = buffer[pos + 1 : eol]
                    if digits.isdigit():
                        length = int(digits)
                        if length > MAX_BULK_LENGTH:
                            raise _bad("bulk string length out of range", buffer, pos)
                        end = eol + 2 + length
                        if end + 2 > len(buffer):
                            return self._wait(pos, pos)
                        if buffer[end] != 13 or buffer[end + 1] != 10:
                            raise _bad("bulk string not followed by CRLF", buffer, end)
                        if length < _VIEW_AFTER or type(buffer) is bytes:
                            value = bytes(buffer[eol + 2 : end])  # slicing bytes: one copy
                        else:  # a bytearray slice would be a copy before the copy
                            with memoryview(buffer) as view:
                                value = bytes(view[eol + 2 : end])
                        pos = end + 2
                    elif digits == b"-1":
                        value = None
                        pos = eol + 2
                    else:
                        raise _bad("bad bulk string length", buffer, pos)
                elif kind == 42:  # *: array
                    digits = buffer[pos + 1 : eol]
                    pos = eol + 2
                    if digits.isdigit():
                        count = int(digits)
                        if count > MAX_ARRAY_LENGTH:
                            raise _bad("array length out of range", buffer, eol - len(digits))
                        if count:
                            if len(stack) >= MAX_DEPTH:
                                raise _bad(f"arrays nested over {MAX_DEPTH} deep", buffer, eol)
                            stack.append(([], count))
                            scan = pos
                            continue
                        value = []
                    elif digits == b"-1":
                        value = None
                    else:
                        raise _bad("bad array length", buffer, eol - len(digits) - 1)
                elif kind == 58:  # :  integer
                    value = int(buffer[pos + 1 : eol])  # a ValueError is handled below
                    if value not in _INT64:
                        raise _bad("integer out of range", buffer, pos)
                    pos = eol + 2
                elif kind == 43:  # +: simple string
                    value = bytes(buffer[pos + 1 : eol])
                    pos = eol + 2
                elif kind == 45:  # -: error
                    value = ReplyError(buffer[pos + 1 : eol].decode("utf-8", "replace"))
                    pos = eol + 2
                else:
                    raise _bad_type(buffer, pos)
                while stack:
                    items, count = stack[-1]
                    items.append(value)
                    if len(items) < count:
                        break
                    stack.pop()
                    value = items
                else:
                    if pos == len(buffer):
                        # All of it consumed: let go of it now rather than at the next feed, so
                        # that a big reply's buffer is freed before its caller decodes it (two
                        # big blocks alive at once cost fresh pages from the system each time).
                        self._buffer = b""
                        pos = 0
                    self._pos = self._scan = pos
                    return value
                scan = pos
        except ProtocolError as exc:
            self._fail(exc)
            raise
        except Exception as exc:  # int() of a malformed number, or a reader bug
            error = _bad(f"{type(exc).__name__}: {exc}", buffer, pos)
            self._fail(error)
            raise error from exc

    def _fail(self, error: ProtocolError) -> None:
        # The place in the reply stream is lost for good: keep failing, as hiredis does.
        if self._error is None:
            self._error = error
        self._buffer, self._pos, self._scan, self._stack = b"", 0, 0, []

    def _wait(self, pos: int, scan: int) -> bool:
        """Remember where the incomplete element starts; refuse garbage that cannot end."""
        if self._error is not None:
            raise ProtocolError(f"the reader already failed: {self._error}")
        buffer = self._buffer
        if pos < len(buffer):
            kind = buffer[pos]
            if kind not in _TYPES:
                raise _bad_type(buffer, pos)
            if kind != 43 and kind != 45 and scan - pos > _MAX_NUMBER_LINE:
                raise _bad("length or integer line too long", buffer, pos)
        self._pos, self._scan = pos, scan
        return False


def _bad(what: str, buffer: bytes | bytearray, at: int) -> ProtocolError:
    return ProtocolError(f"Protocol error: {what}: {bytes(buffer[at : at + 40])!r}")


def _bad_type(buffer: bytes | bytearray, at: int) -> ProtocolError:
    if buffer[at] in _RESP3_TYPES:
        return _bad("a RESP3 reply on a RESP2 connection", buffer, at)
    return _bad("unexpected reply type", buffer, at)


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


# Replies that need no further look: a RESP2 scalar (error replies are checked by callers).
SCALARS = frozenset({bytes, int, type(None)})


def resp2_violation(reply: Any) -> str | None:
    """Return why ``reply`` cannot come from a RESP2 server, or None if it can.

    The pure-Python reader refuses RESP3 bytes itself; hiredis parses them into dicts,
    floats, bools..., so the connections check what either reader hands them (arrays
    without recursion, nested at most ``MAX_DEPTH`` deep, as the Python reader allows).
    """
    pending = [(reply, 0)]
    while pending:
        value, depth = pending.pop()
        kind = type(value)
        if kind is list:
            if depth >= MAX_DEPTH:
                return f"a reply nested more than {MAX_DEPTH} levels deep"
            pending.extend((item, depth + 1) for item in value if type(item) not in SCALARS)
        elif kind not in SCALARS and not isinstance(value, ERROR_TYPES):
            return f"a {kind.__name__} reply (RESP3?) on a RESP2 connection"
    return None
