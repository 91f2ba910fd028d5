"""The suite's own redis-server starter: it binds its ports or retries, it never hopes.

A port found free a moment ago may be taken by the time redis-server binds it (by another
test run on the machine, or by an outgoing connection: Redis's default cluster bus port,
port + 10000, usually falls in the kernel's ephemeral range). So these tests hold ports
with listening sockets, hand them to the starter as its first candidates, and check that
every kind of server the suite starts comes up elsewhere; and that a start that cannot
succeed fails at once, saying why.
"""

from __future__ import annotations

import random
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests._servers import START_ATTEMPTS, RedisServer, candidate_port, free_port
from tests._topologies import Cluster, Node, SentinelServer, Tls, started


def first(*ports: int) -> Callable[[], int]:
    """Return a candidate source giving ``ports`` in order, then random ones."""
    queue = iter(ports)
    return lambda: next(queue, None) or candidate_port()


def listen(port: int) -> socket.socket:
    """Hold ``port`` with a listening socket that never answers (raises if it is taken)."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


@pytest.fixture
def held() -> Iterator[Callable[[int], int]]:
    """Return ``hold(offset)``: a port P that is held, with P + ``offset`` held as well."""
    sockets: list[socket.socket] = []

    def hold(offset: int = 0) -> int:
        while True:
            port = candidate_port()
            if port + offset > 65_535:
                continue
            pair: list[socket.socket] = []
            try:
                for each in {port, port + offset}:
                    pair.append(listen(each))
            except OSError:
                for sock in pair:
                    sock.close()
                continue
            sockets.extend(pair)
            return port

    yield hold
    for sock in sockets:
        sock.close()


@pytest.fixture(scope="module")
def tls() -> Iterator[Tls]:
    with tempfile.TemporaryDirectory(prefix="djredis-tls-") as directory:
        yield Tls.create(Path(directory))


def log_of(server: RedisServer) -> str:
    return server.logfile.read_text(errors="replace")


def answers_as_itself(server: RedisServer) -> bool:
    """Return whether the server's address is answered by the server's own process."""
    assert server.process is not None
    with server.client() as client:
        return int(client.info("server")["process_id"]) == server.process.pid


@pytest.mark.parametrize("kind", ["standalone", "acl", "tls", "sentinel"])
def test_server_comes_up_elsewhere_when_its_first_port_is_taken(
    kind: str, held: Callable[[int], int], tls: Tls
) -> None:
    taken = held(0)
    ports = first(taken)
    makers: dict[str, Callable[[], RedisServer]] = {
        "standalone": lambda: RedisServer(ports=ports),
        "acl": lambda: Node(ports=ports),
        "tls": lambda: Node(tls=tls, ports=ports),
        "sentinel": lambda: SentinelServer(quorum=1, down_after_ms=500, ports=ports),
    }
    server = makers[kind]()
    if isinstance(server, SentinelServer):
        server.primary_port = free_port()  # a primary that is down is enough here
    try:
        server.start()
        assert server.port != taken
        assert answers_as_itself(server)
        assert f"{taken}: bind: Address already in use" in log_of(server)
    finally:
        server.stop()


def test_unix_socket_server_starts() -> None:
    server = RedisServer(tcp=False, unix=True).start()
    try:
        assert server.port == 0
        assert answers_as_itself(server)
    finally:
        server.stop()


def test_port_held_by_another_redis_is_not_mistaken_for_ours() -> None:
    """A server on our candidate answers PING too; only our own PID counts as started."""
    other = RedisServer().start()
    server = RedisServer(ports=first(other.port))
    try:
        server.start()
        assert server.port != other.port
        assert answers_as_itself(server)
        assert answers_as_itself(other)
    finally:
        server.stop()
        other.stop()


def test_restart_keeps_the_port() -> None:
    server = RedisServer().start()
    try:
        port = server.port
        server.restart()
        assert server.port == port
        assert answers_as_itself(server)
    finally:
        server.stop()


def test_start_gives_up_after_its_attempts_with_the_log(held: Callable[[int], int]) -> None:
    taken = held(0)
    server = RedisServer(ports=lambda: taken)
    began = time.monotonic()
    try:
        with pytest.raises(RuntimeError) as failure:
            server.start(timeout=30)
    finally:
        server.stop()
    assert time.monotonic() - began < 10
    assert f"no free port after {START_ATTEMPTS} attempts" in str(failure.value)
    assert "Address already in use" in str(failure.value)


def test_bad_option_fails_at_once_with_the_server_output() -> None:
    server = RedisServer(extra=("--no-such-option", "yes"))
    began = time.monotonic()
    try:
        with pytest.raises(RuntimeError) as failure:
            server.start(timeout=30)
    finally:
        server.stop()
    assert time.monotonic() - began < 5
    assert "Bad directive" in str(failure.value)
    assert "no-such-option" in str(failure.value)


def test_server_that_never_answers_is_killed_at_the_deadline_with_its_log() -> None:
    # It runs, but without INFO it can never prove it is our process.
    server = RedisServer(extra=("--rename-command", "INFO", ""))
    began = time.monotonic()
    try:
        with pytest.raises(RuntimeError) as failure:
            server.start(timeout=1)
        assert server.process is not None
        assert server.process.poll() is not None
    finally:
        server.stop()
    assert time.monotonic() - began < 5
    assert "did not answer within 1 s" in str(failure.value)
    assert "Ready to accept connections" in str(failure.value)


def test_failed_cluster_start_leaves_no_process_or_temp_dir(
    held: Callable[[int], int],
) -> None:
    taken = held(0)
    cluster = Cluster(primaries=3, replicas=0, ports=lambda: taken)
    with pytest.raises(RuntimeError, match="no free port"):
        next(started(cluster))
    assert all(node.process is None or node.process.poll() is not None for node in cluster.nodes)
    assert not any(node.dir.exists() for node in cluster.nodes)


def test_candidates_do_not_follow_the_shared_random_seed() -> None:
    """Two test runs that both call random.seed() must still draw different ports."""
    random.seed(7)
    one = [candidate_port() for _ in range(5)]
    random.seed(7)
    assert [candidate_port() for _ in range(5)] != one


@pytest.mark.slow
def test_cluster_node_skips_a_taken_port_and_a_taken_bus_port(
    held: Callable[[int], int],
) -> None:
    port = held(10_000)
    bus = port + 10_000
    # The first node tries `port` (taken), then a free port with bus port `bus` (taken).
    cluster = Cluster(primaries=3, replicas=0, ports=first(port, bus, candidate_port(), bus))
    try:
        cluster.start()
        node = cluster.nodes[0]
        assert {port, bus}.isdisjoint({node.port, node.bus_port})
        assert f"Failed listening on port {port} (TCP)" in log_of(node)
        assert f"Failed listening on port {bus} (cluster)" in log_of(node)
        with cluster.client() as client:
            client.set("k", "v")
            assert client.get("k") == b"v"
    finally:
        cluster.stop()


@pytest.mark.slow
def test_two_clusters_started_at_once_on_the_same_candidates_both_come_up() -> None:
    """Two suites on one machine, made to draw the very same ports in the same order."""
    shared = [candidate_port() for _ in range(24)]
    clusters = [Cluster(ports=first(*shared)) for _ in range(2)]
    errors: list[BaseException] = []

    def start(cluster: Cluster) -> None:
        try:
            cluster.start()
        except BaseException as exc:  # reported by the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(c,), daemon=True) for c in clusters]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a cluster start hung"
        assert errors == []
        one, two = ({n.port for n in c.nodes} | {n.bus_port for n in c.nodes} for c in clusters)
        assert len(one) == len(two) == 12
        assert one.isdisjoint(two)
        for index, cluster in enumerate(clusters):
            assert all(answers_as_itself(node) for node in cluster.nodes)
            with cluster.client() as client:
                client.set("k", index)
                assert client.get("k") == str(index).encode()
    finally:
        for thread in threads:
            thread.join(timeout=120)
        for cluster in clusters:
            cluster.stop()
