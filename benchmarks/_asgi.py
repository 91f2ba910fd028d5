"""Serve a Django ASGI app with uvicorn and load it with wrk over the loopback.

Shared by the benchmarks that measure whole requests (sessions, async cache views). The
load is bounded in time and goes to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import _report

__all__ = ["WrkResult", "serve", "wrk"]


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    raw: str


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("uvicorn did not start listening")


@contextmanager
def serve(app: str, port: int, env: Mapping[str, str], workers: int = 1) -> Iterator[str]:
    """Run ``uvicorn app`` on ``port`` with ``env`` added; yield its base URL."""
    environment = {
        **os.environ,
        **env,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(_report.PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p
        ),
    }
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--host",
               "127.0.0.1", "--workers", str(workers), "--no-access-log",
               "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(command, env=environment, cwd=_report.PROJECT_ROOT)
    try:
        _wait_for_port(port, server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(output: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def wrk(
    url: str, connections: int, seconds: int, script: Path | None = None, threads: int = 1
) -> WrkResult:
    """Load ``url`` with wrk for ``seconds``; fail if any response was not 2xx/3xx."""
    command = [shutil.which("wrk") or "wrk", f"-t{threads}", f"-c{connections}",
               f"-d{seconds}s", "--latency"]  # fmt: skip
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed requests under load\n{output}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if not rps or not total:
        raise RuntimeError(f"wrk printed no Requests/sec:\n{output}")
    return WrkResult(
        float(rps.group(1)),
        _latency_ms(output, "50"),
        _latency_ms(output, "99"),
        int(total.group(1)),
        output,
    )
