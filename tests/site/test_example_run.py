"""``python3 example/run.py``, the README's first command: the whole stack, and its errors.

These run the script as a user would, in this interpreter (which has the requirements, so
no .venv is made), with every port free or chosen by the test.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._servers import RedisServer

from ._example import celery_broker_problem

RUN = Path(__file__).resolve().parents[2] / "example" / "run.py"


def run(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """Run example/run.py with ``args``; return its completed process."""
    environment = {**os.environ, **env}
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    if "REDIS_URL" not in env:
        environment.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, str(RUN), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something listens on (and never answers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_check_brings_up_redis_site_worker_and_beat_then_stops_them(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Serve every page from a private Redis, uvicorn, a worker and beat; stop all; OK.

    Celery is left out only where kombu itself refuses the installed redis-py.
    """
    celery_expected = celery_broker_problem(redis_server.url(3)) is None
    result = run("--check", DJREDIS_EXAMPLE_DB=str(tmp_path / "db.sqlite3"))

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "OK"
    assert sum(line.startswith("OK /") for line in lines) == 22  # run.PAGES, chat included
    services = ["uvicorn", "redis-server"]
    if celery_expected:
        assert "not starting Celery" not in result.stdout, result.stdout
        services += ["celery-beat", "celery-worker"]
    for service in services:
        assert f"stopped {service}" in result.stdout


def test_check_runs_with_debug_off_and_two_workers(tmp_path: Path) -> None:
    """--production: DEBUG = False under two uvicorn workers serves every page too."""
    result = run("--check", "--production", DJREDIS_EXAMPLE_DB=str(tmp_path / "db.sqlite3"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_uses_the_redis_at_redis_url(tmp_path: Path) -> None:
    """With REDIS_URL set, start no Redis of its own and write to the given one."""
    redis_server = RedisServer().start()  # its own: the site writes to databases 0-4
    try:
        result = run(
            "--check",
            DJREDIS_EXAMPLE_DB=str(tmp_path / "db.sqlite3"),
            REDIS_URL=redis_server.url(0),
        )
        probe = redis_server.client(0).exists("example:1:probe")
    finally:
        redis_server.stop()

    assert result.returncode == 0, result.stdout + result.stderr
    assert "stopped redis-server" not in result.stdout
    assert probe == 1  # the /caches/ page wrote it there


def test_busy_http_port_fails_first_with_the_port_option(tmp_path: Path, busy_port: int) -> None:
    """A busy port stops run.py before Redis and the migrations, saying to use --port."""
    database = tmp_path / "db.sqlite3"
    result = run("--port", str(busy_port), DJREDIS_EXAMPLE_DB=str(database), timeout=30)

    assert result.returncode == 1
    assert f"port {busy_port} is busy" in result.stderr
    assert "run again with --port " in result.stderr
    assert "redis-server" not in result.stdout  # no Redis was started
    assert not database.exists()  # no migration ran


def test_unreachable_redis_url_says_what_to_do(tmp_path: Path, busy_port: int) -> None:
    """REDIS_URL naming a server that does not answer PING: a message naming the fix."""
    result = run(
        "--check",
        DJREDIS_EXAMPLE_DB=str(tmp_path / "db.sqlite3"),
        REDIS_URL=f"redis://127.0.0.1:{busy_port}/0",
        timeout=30,
    )
    assert result.returncode == 1
    assert f"nothing answers PING on 127.0.0.1:{busy_port}" in result.stderr
    assert "unset REDIS_URL" in result.stderr


def serve_in_foreground(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """Start ``run.py --port <free port>`` as a user would (its own Redis, no REDIS_URL),
    with its database and mail in ``tmp_path``; return the process and its HTTP port."""
    environment = {
        **os.environ,
        "DJREDIS_EXAMPLE_DB": str(tmp_path / "db.sqlite3"),
        "DJREDIS_EXAMPLE_MAIL_DIR": str(tmp_path / "mail"),
    }
    for name in ("DJANGO_SETTINGS_MODULE", "REDIS_URL"):
        environment.pop(name, None)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        http_port = int(sock.getsockname()[1])
    process = subprocess.Popen(
        [sys.executable, str(RUN), "--port", str(http_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )
    return process, http_port


def test_ctrl_c_stops_everything_run_py_started(tmp_path: Path, redis_server: RedisServer) -> None:
    """Serve in the foreground, print the URL and login; SIGINT stops every process."""
    celery_expected = celery_broker_problem(redis_server.url(3)) is None
    process, http_port = serve_in_foreground(tmp_path)
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        output = "".join(lines)
        assert f"the reference site is on http://127.0.0.1:{http_port}/" in output
        assert "log in as demo / djredis-demo" in output
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output += rest

    assert process.returncode == 0, output
    pids = [int(pid) for pid in re.findall(r"stopped [\w-]+ \(pid (\d+)\)", output)]
    # beat, worker, uvicorn, redis-server (no Celery where kombu refuses this redis-py)
    assert len(pids) == (4 if celery_expected else 2), output
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    redis_port = int(re.search(r"on redis://127\.0\.0\.1:(\d+)/0", output).group(1))  # type: ignore[union-attr]
    for port in (http_port, redis_port):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more


def descendants(pid: int) -> set[int]:
    """Return the pids of every process below ``pid`` (children, their children, ...)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                for child in map(int, task.read_text().split()):
                    if child not in found:
                        found.add(child)
                        todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Tell whether ``pid`` still runs (a zombie, reaped by init soon, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_run_py_takes_its_services_down_too(tmp_path: Path) -> None:
    """SIGKILL run.py (no chance to clean up): Redis, uvicorn, Celery die with it."""
    process, _ = serve_in_foreground(tmp_path)
    assert process.stdout is not None
    children: set[int] = set()
    try:
        for line in process.stdout:
            if "Ctrl-C stops everything" in line:
                break
        children = descendants(process.pid)
        assert len(children) >= 2  # redis-server and uvicorn at least
        process.kill()
        process.wait(timeout=10)
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = sorted(pid for pid in children if alive(pid))
        assert left == [], [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in left]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_postgres_database_url_without_a_driver_says_what_to_install(tmp_path: Path) -> None:
    """DATABASE_URL=postgres://... with neither psycopg nor psycopg2: the pip command."""
    if importlib.util.find_spec("psycopg") or importlib.util.find_spec("psycopg2"):
        pytest.skip("a PostgreSQL driver is installed here")
    result = run("--check", DATABASE_URL="postgres://u:p@127.0.0.1:1/x", timeout=30)
    assert result.returncode == 1
    assert "no driver is installed" in result.stderr
    assert "pip install 'psycopg[binary]'" in result.stderr
    assert "redis-server" not in result.stdout  # nothing was started
