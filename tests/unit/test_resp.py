"""The RESP2 readers against redis-py's own parser, on random replies split at random points.

Both readers (the pure-Python one and hiredis, when installed) must return what redis-py's
pure-Python ``_RESP2Parser`` returns for the same bytes, however the bytes are chunked; a
malformed stream must raise ``ProtocolError`` and nothing else; and a large reply fed in
socket-sized chunks must cost work linear in its size.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import sys
import time
import tracemalloc
from collections.abc import Callable
from types import FrameType, SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis._parsers.encoders import Encoder
from redis._parsers.resp2 import _RESP2Parser

from djredis._core.errors import ProtocolError
from djredis._io import resp as _resp
from djredis._io.resp import MAX_DEPTH, PythonReader, new_reader

try:
    import hiredis
except ImportError:  # pragma: no cover - the CI leg without hiredis
    hiredis = None

KINDS = [
    "python",
    pytest.param(
        "hiredis", marks=pytest.mark.skipif(hiredis is None, reason="hiredis not installed")
    ),
]
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- random RESP2 replies ---------------------------------------------------------------------

_line_byte = st.integers(0, 255).filter(lambda b: b not in b"\r\n")
_line = st.lists(_line_byte, max_size=24).map(bytes)
# Bulk strings carry anything, so also what looks like RESP framing.
_payload = st.one_of(
    st.binary(max_size=48),
    st.lists(st.sampled_from([b"\r\n", b"\r", b"\n", b"$3", b"*1", b"-E", b"\x00\xff", b"x"])).map(
        b"".join
    ),
)
# redis-py strips the code of the errors it maps to its own classes (NOAUTH, MOVED...), so
# the codes here are ones it leaves alone.
_error = st.tuples(st.sampled_from([b"WRONGTYPE", b"BUSYGROUP", b"Z"]), _line).map(
    lambda parts: b"-" + parts[0] + b" " + parts[1] + b"\r\n"
)
_leaf = st.one_of(
    _payload.map(lambda b: b"$%d\r\n%s\r\n" % (len(b), b)),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: b":%d\r\n" % i),
    _line.map(lambda s: b"+" + s + b"\r\n"),
    _error,
    st.just(b"$-1\r\n"),
    st.just(b"*-1\r\n"),
)
reply = st.recursive(
    _leaf,
    lambda children: st.lists(children, max_size=6).map(
        lambda items: b"*%d\r\n" % len(items) + b"".join(items)
    ),
    max_leaves=40,
)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (taken modulo its length)."""
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def parse_chunks(reader: Any, chunks: list[bytes]) -> list[Any]:
    """Feed ``chunks`` one by one, taking every complete reply after each."""
    replies = []
    for chunk in chunks:
        reader.feed(chunk)
        while (item := reader.gets()) is not False:
            replies.append(item)
    return replies


def redis_py_parse(data: bytes, count: int) -> list[Any]:
    """Return ``count`` replies read from ``data`` by redis-py's pure-Python RESP2 parser."""
    ours, theirs = socket.socketpair()
    try:
        theirs.settimeout(5)
        # The parser only uses these three attributes of a redis-py Connection (5.x to 8.x).
        connection = SimpleNamespace(
            _sock=theirs, socket_timeout=5, encoder=Encoder("utf-8", "strict", False)
        )
        parser = _RESP2Parser(socket_read_size=65536)
        parser.on_connect(connection)
        ours.sendall(data)
        ours.shutdown(socket.SHUT_WR)
        replies = [parser.read_response() for _ in range(count)]
        parser.on_disconnect()
        return replies
    finally:
        ours.close()
        theirs.close()


def normalise(item: Any) -> Any:
    if isinstance(item, list):
        return [normalise(i) for i in item]
    if isinstance(item, Exception):
        return ("error", str(item))
    return item


@pytest.mark.parametrize("kind", KINDS)
@EXAMPLES
@given(replies=st.lists(reply, min_size=1, max_size=5), cuts=st.lists(st.integers(0, 10**6)))
def test_reader_agrees_with_redis_py_however_the_bytes_are_split(
    kind: str, replies: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(replies)
    expected = redis_py_parse(data, len(replies))
    got = parse_chunks(new_reader(kind), chunked(data, cuts))
    assert normalise(got) == normalise(expected)


@pytest.mark.parametrize("kind", KINDS)
def test_error_replies_are_returned_as_error_types(kind: str) -> None:
    got = parse_chunks(new_reader(kind), [b"-ERR top\r\n*1\r\n-ERR nested\r\n"])
    assert isinstance(got[0], _resp.ERROR_TYPES)
    assert isinstance(got[1][0], _resp.ERROR_TYPES)
    assert normalise(got) == [("error", "ERR top"), [("error", "ERR nested")]]


# -- protocol violations ----------------------------------------------------------------------

RESP3 = [
    b"%1\r\n+a\r\n:1\r\n",
    b"~1\r\n:1\r\n",
    b">2\r\n+message\r\n+x\r\n",
    b",1.5\r\n",
    b"#t\r\n",
    b"_\r\n",
    b"(12345678901234567890\r\n",
    b"=7\r\ntxt:abc\r\n",
    b"|1\r\n+a\r\n+b\r\n:1\r\n",
]
# Refused by the Python reader; hiredis refuses a subset (see the module docstring of _resp).
VIOLATIONS = [
    *RESP3,
    b"?\r\n",
    b"\r\n",
    b"HTTP/1.1 400 Bad Request\r\n",
    b"$abc\r\n",
    b"$\r\n",
    b"$-2\r\n",
    b"$ 3\r\nabc\r\n",
    b"$1.5\r\n",
    b"*x\r\n",
    b"*-5\r\n",
    b"*\r\n",
    b"$3\r\nabcXY",
    b"$3\r\nabc\n\r",
    b"$%d\r\n" % (512 * 1024 * 1024 + 1),
    b"$99999999999999999999\r\n",
    b"$" + b"9" * 5000 + b"\r\n",
    b"$" + b"1" * 100,
    b"*5000000000\r\n",
    b"*1\r\n" * (MAX_DEPTH + 1) + b":1\r\n",
    b":abc\r\n",
    b":\r\n",
    b":9223372036854775808\r\n",
    b":" + b"1" * 5000 + b"\r\n",
]


def violations() -> st.SearchStrategy[bytes]:
    """A malformed stream: valid replies, then a violation, possibly inside an array."""
    wrap = st.lists(st.tuples(st.integers(2, 4), st.lists(reply, max_size=1)), max_size=3)

    def build(parts: tuple[list[bytes], bytes, list[tuple[int, list[bytes]]]]) -> bytes:
        before, bad, wrappers = parts
        for count, siblings in wrappers:
            bad = b"*%d\r\n" % count + b"".join(siblings) + bad
        return b"".join(before) + bad

    return st.tuples(st.lists(reply, max_size=3), st.sampled_from(VIOLATIONS), wrap).map(build)


def drain(reader: Any, chunks: list[bytes]) -> None:
    for chunk in chunks:
        reader.feed(chunk)
        while reader.gets() is not False:
            pass


@pytest.mark.parametrize("bad", VIOLATIONS, ids=lambda b: repr(b[:16]))
@pytest.mark.parametrize("chunk_size", [1, 3, 1 << 20])
def test_python_reader_raises_protocol_error_on_each_violation(bad: bytes, chunk_size: int) -> None:
    reader = PythonReader()
    data = b"+OK\r\n*2\r\n:1\r\n" + bad
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    with pytest.raises(ProtocolError):
        drain(reader, chunks)


@EXAMPLES
@given(data=violations(), cuts=st.lists(st.integers(0, 10**6)))
def test_python_reader_raises_protocol_error_on_malformed_streams(
    data: bytes, cuts: list[int]
) -> None:
    with pytest.raises(ProtocolError):
        drain(PythonReader(), chunked(data, cuts))


@pytest.mark.parametrize("kind", KINDS)
@EXAMPLES
@given(data=st.one_of(violations(), st.binary(max_size=200)), cuts=st.lists(st.integers(0, 10**6)))
def test_readers_raise_nothing_but_protocol_error(kind: str, data: bytes, cuts: list[int]) -> None:
    with contextlib.suppress(ProtocolError):
        drain(new_reader(kind), chunked(data, cuts))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "bad", [b"?\r\n", b"$abc\r\n", b"*1\r\n" * 2000 + b":1\r\n"], ids=["type", "length", "depth"]
)
def test_readers_refuse_what_both_refuse_and_keep_failing(kind: str, bad: bytes) -> None:
    reader = new_reader(kind)
    reader.feed(b":1\r\n" + bad + b":2\r\n")
    assert reader.gets() == 1
    with pytest.raises(ProtocolError):
        reader.gets()
    with pytest.raises(ProtocolError):
        reader.gets()
    with pytest.raises(ProtocolError):
        drain(reader, [b":3\r\n"])


def test_garbage_without_a_line_end_fails_before_the_socket_times_out() -> None:
    reader = PythonReader()
    reader.feed(b"GET / HTTP/1.1")  # a server that is not Redis: no CRLF needed to refuse it
    with pytest.raises(ProtocolError, match="unexpected reply type"):
        reader.gets()
    reader = PythonReader()
    reader.feed(b"$" + b"7" * 64)
    with pytest.raises(ProtocolError, match="too long"):
        reader.gets()


# -- new_reader -------------------------------------------------------------------------------


def test_new_reader_python_is_the_pure_python_reader() -> None:
    assert isinstance(new_reader("python"), PythonReader)


@pytest.mark.skipif(hiredis is None, reason="hiredis not installed")
def test_new_reader_defaults_to_hiredis_when_installed() -> None:
    assert isinstance(new_reader(), hiredis.Reader)
    assert isinstance(new_reader("hiredis"), hiredis.Reader)


@pytest.mark.skipif(hiredis is not None, reason="hiredis is installed")
def test_new_reader_without_hiredis() -> None:  # pragma: no cover - the CI leg without hiredis
    assert isinstance(new_reader(), PythonReader)
    with pytest.raises(ImportError, match="hiredis"):
        new_reader("hiredis")


def test_new_reader_refuses_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="'C'"):
        new_reader("C")


# -- linear cost ------------------------------------------------------------------------------

VALUE = bytes(range(256)) * 40  # 10 KB


def large_reply(count: int) -> list[bytes]:
    """An MGET reply of ``count`` 10 KB values, as 64 KB socket reads."""
    data = b"*%d\r\n" % count + b"$%d\r\n%s\r\n" % (len(VALUE), VALUE) * count
    return [data[i : i + 65536] for i in range(0, len(data), 65536)]


def lines_run_in_reader(chunks: list[bytes]) -> int:
    """Count the Python lines the reader runs to parse ``chunks`` (its work, untimed)."""
    filename = _resp.__file__
    lines = 0

    def trace(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        nonlocal lines
        if frame.f_code.co_filename != filename:
            return None
        if event == "line":
            lines += 1
        return trace

    reader = PythonReader()
    sys.settrace(trace)
    try:
        replies = parse_chunks(reader, chunks)
    finally:
        sys.settrace(None)
    assert len(replies) == 1
    return lines


def cpu_seconds(chunks: list[bytes]) -> float:
    best = float("inf")
    for _ in range(3):
        reader = PythonReader()
        start = time.process_time()
        replies = parse_chunks(reader, chunks)
        best = min(best, time.process_time() - start)
        assert replies[0][-1] == VALUE
    return best


@pytest.mark.timeout(60)
def test_python_reader_work_is_linear_in_the_reply_size() -> None:
    small, large = lines_run_in_reader(large_reply(100)), lines_run_in_reader(large_reply(1000))
    # 10x the data: 10x the work give or take the fixed costs, never the ~100x of a parser
    # that starts a partial reply over on every chunk.
    assert large < 12 * small, (small, large)


@pytest.mark.timeout(60)
def test_python_reader_time_is_linear_in_the_reply_size() -> None:
    # Timing also covers the work done in C (searching and copying the buffer).
    small, large = cpu_seconds(large_reply(100)), cpu_seconds(large_reply(1000))
    assert large < 30 * small, (small, large)


@pytest.mark.timeout(60)
def test_python_reader_takes_a_large_bulk_string_in_many_chunks() -> None:
    value = b"\r\n" * (4 * 1024 * 1024)
    data = b"$%d\r\n%s\r\n" % (len(value), value)
    start = time.process_time()
    replies = parse_chunks(PythonReader(), [data[i : i + 4096] for i in range(0, len(data), 4096)])
    assert replies == [value]
    assert time.process_time() - start < 5


def test_python_reader_copies_what_the_caller_may_reuse() -> None:
    reader = PythonReader()
    buffer = bytearray(b"$5\r\nhel")
    reader.feed(buffer, 0, 7)
    buffer[:] = b"lo\r\n$2\r\nab\r\nXX"
    reader.feed(buffer, 0, 12)
    buffer[:] = b"\x00" * len(buffer)
    assert reader.gets() == b"hello"
    assert reader.gets() == b"ab"
    assert reader.gets() is False


def test_python_reader_takes_arrays_nested_max_depth_deep() -> None:
    reply = parse_chunks(PythonReader(), [b"*1\r\n" * MAX_DEPTH + b":7\r\n"])[0]
    for _ in range(MAX_DEPTH):
        reply = reply[0]
    assert reply == 7


# -- big bulk strings -------------------------------------------------------------------------

# Payloads from empty to 12 KB: on both sides of the size (4 KB) from which the Python reader
# copies a bulk string out of its buffer through a view.
_big_payload = st.integers(0, 12_000).flatmap(
    lambda size: (
        st.binary(min_size=size, max_size=size) | st.just(b"\r\n" * (size // 2) + b"$" * (size % 2))
    )
)
_big_bulk = _big_payload.map(lambda b: b"$%d\r\n%s\r\n" % (len(b), b))
big_reply = st.one_of(
    _big_bulk,
    st.lists(_big_bulk, min_size=1, max_size=4).map(
        lambda items: b"*%d\r\n" % len(items) + b"".join(items)
    ),
    reply,
)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    replies=st.lists(big_reply, min_size=1, max_size=4),
    cuts=st.lists(st.integers(0, 10**6), max_size=40),
    reuse=st.booleans(),
)
def test_reader_agrees_with_redis_py_on_big_bulk_strings_split_anywhere(
    kind: str, replies: list[bytes], cuts: list[int], reuse: bool
) -> None:
    data = b"".join(replies)
    expected = redis_py_parse(data, len(replies))
    reader = new_reader(kind)
    if not reuse:
        got = parse_chunks(reader, chunked(data, cuts))
    else:  # as the blocking connection feeds it: one receive buffer, overwritten each time
        got = []
        buffer = bytearray(max(1, len(data)))
        for chunk in chunked(data, cuts):
            buffer[: len(chunk)] = chunk
            reader.feed(buffer, 0, len(chunk))
            buffer[: len(chunk)] = b"\x00" * len(chunk)  # the next receive overwrites it
            while (item := reader.gets()) is not False:
                got.append(item)
    assert normalise(got) == normalise(expected)
    for leaf in leaves(got):
        assert type(leaf) in (bytes, int, type(None)) or isinstance(leaf, Exception), leaf


def leaves(item: Any) -> list[Any]:
    """Every non-array value in a reply, however deep (a bulk string must come back as bytes,
    not as a view or bytearray of the reader's buffer)."""
    if isinstance(item, list):
        return [leaf for child in item for leaf in leaves(child)]
    return [item]


def test_python_reader_lets_go_of_a_consumed_reply_before_it_is_decoded() -> None:
    # A 10 MB value arrives in socket-sized reads; once it is returned the reader must not
    # keep its buffer alive until the next feed: the caller's decoding of the value would
    # otherwise need a third big block of fresh memory (page faults, measured 7 ms per 10 MB).
    value = bytes(range(256)) * 40_000
    data = b"$%d\r\n%s\r\n" % (len(value), value)
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    reader = PythonReader()
    tracemalloc.start()
    try:
        got = parse_chunks(reader, chunks)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == [value]
    assert type(got[0]) is bytes
    # The reply itself (10 MB) is all that is still allocated, not a staging copy as well.
    assert held < 1.5 * len(value), held
