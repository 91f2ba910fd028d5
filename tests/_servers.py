"""Start and stop real redis-server processes for the tests (no Docker, no fakes).

Each server runs in its own temp dir on a free port (or only a Unix socket), keeps
nothing on disk, and is stopped by PID. Topologies (replicas, Sentinel, Cluster) build on
``RedisServer`` with extra arguments.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process owned by the test suite."""

    def __init__(
        self, *, tcp: bool = True, unix: bool = False, extra: tuple[str, ...] = ()
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="djredis-test-"))
        self.port = free_port() if tcp else 0
        self.socket_path = str(self.dir / "redis.sock") if unix else None
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> RedisServer:
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
            str(self.dir / "redis.log"),
            "--databases",
            "16",
        ]
        if self.socket_path:
            args += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
        args += list(self.extra)
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.client().ping():
                    return self
            except redis.exceptions.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                if self.process.poll() is None:  # never leave a half-started server behind
                    self.process.kill()
                    self.process.wait()
                raise RuntimeError(f"redis-server did not start: {log}")
            time.sleep(0.02)

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
        if self.port:
            return f"redis://127.0.0.1:{self.port}/{db}"
        return f"unix://{self.socket_path}?db={db}"

    def client(self, db: int = 0) -> redis.Redis:
        if self.port:
            return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=5)
        return redis.Redis(unix_socket_path=self.socket_path, db=db, socket_timeout=5)


def commandstats(client: redis.Redis) -> dict[str, int]:
    """Return {command: calls} from INFO commandstats (e.g. {"get": 3, "evalsha": 1})."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(values["calls"]) for name, values in stats.items()}
