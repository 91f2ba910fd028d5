#!/usr/bin/env python3
"""Run the djredis reference site with a private Redis: ``python3 example/run.py``.

From a clean clone on Debian this:

1. creates ``.venv`` (with the python running this script) and ``pip install -e .`` into it
   when needed, then re-runs itself inside it;
2. installs ``redis-server`` with apt-get (through sudo when not root) if it is missing;
3. starts a private redis-server on 127.0.0.1:6399 (``--redis-port`` or
   ``$DJREDIS_EXAMPLE_REDIS_PORT``) in a temp dir, with no persistence;
4. runs the migrations, then ``manage.py runserver 127.0.0.1:8000`` (``--port`` or
   ``$DJREDIS_EXAMPLE_PORT``) in the foreground. Ctrl-C stops the site and the Redis.

``--check`` starts the same stack on free ports (unless ports are given), fetches every
page once over HTTP, prints OK and exits 0: a smoke test for CI. It never touches a Redis
on 6379.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

EXAMPLE_DIR = Path(__file__).resolve().parent
REPO_DIR = EXAMPLE_DIR.parent
VENV_DIR = REPO_DIR / ".venv"
MANAGE = EXAMPLE_DIR / "manage.py"
DEFAULT_REDIS_PORT = 6399
DEFAULT_HTTP_PORT = 8000
FORBIDDEN_REDIS_PORT = 6379  # the machine's own Redis, if any: never ours to use
# Each page of the site, with a text it must contain.
PAGES = {
    "/": "Redis for Django",
    "/cache-page/": "cache_page",
    "/fragment/": "Template fragment caching",
    "/counter/": "cache.incr",
    "/leaderboard/": "get_redis_connection",
}


def say(message: str) -> None:
    """Print a progress line (quietly skipped once the terminal or pipe is gone)."""
    with contextlib.suppress(OSError):
        print(f"[run.py] {message}", flush=True)


def fail(message: str) -> SystemExit:
    """Return a SystemExit that prints ``message`` and exits 1."""
    return SystemExit(f"[run.py] error: {message}")


# -- step 1: the virtualenv ------------------------------------------------------------------


def apt_install(*packages: str) -> None:
    """Install Debian packages with apt-get, through sudo when not root."""
    prefix: list[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            raise fail(f"{' '.join(packages)} is needed: run as root or install sudo")
        prefix = ["sudo"]
    apt = [*prefix, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    say(f"installing {' '.join(packages)} with apt-get")
    subprocess.run([*apt, "update"], check=True)
    subprocess.run([*apt, "install", "-y", *packages], check=True)


def in_project_venv() -> bool:
    """Return whether this interpreter is the project's .venv."""
    return Path(sys.prefix).resolve() == VENV_DIR.resolve()


def venv_python() -> Path:
    """Return the python of the project's .venv."""
    return VENV_DIR / "bin" / "python"


def create_venv() -> None:
    """Create .venv with this python; install python3-venv first if Debian lacks it."""
    say(f"creating {VENV_DIR} with {sys.executable}")
    command = [sys.executable, "-m", "venv", str(VENV_DIR)]
    if subprocess.run(command).returncode != 0:
        shutil.rmtree(VENV_DIR, ignore_errors=True)
        # Debian splits ensurepip out of python3 into python3-venv.
        apt_install("python3-venv")
        subprocess.run(command, check=True)


def has_requirements(python: Path | str) -> bool:
    """Return whether ``python`` can import djredis and Django."""
    check = [str(python), "-c", "import django, djredis, redis"]
    return subprocess.run(check, capture_output=True).returncode == 0


def ensure_venv() -> None:
    """Make sure we run in .venv with djredis installed; re-exec into it if needed."""
    if not in_project_venv() and not venv_python().exists():
        create_venv()
    python = sys.executable if in_project_venv() else str(venv_python())
    if not has_requirements(python):
        say("installing djredis (pip install -e .) into .venv")
        subprocess.run([python, "-m", "pip", "install", "-e", str(REPO_DIR)], check=True)
    if not in_project_venv():
        os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])


# -- step 2 and 3: Redis ---------------------------------------------------------------------


def redis_server_binary() -> str:
    """Return the path of redis-server, installing the Debian package if it is missing."""
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
    if found:
        return found
    apt_install("redis-server")
    found = shutil.which("redis-server", path=f"{os.environ.get('PATH', '')}:/usr/bin:/usr/sbin")
    if not found:
        raise fail("redis-server is still missing after apt-get install redis-server")
    return found


def port_in_use(port: int) -> bool:
    """Return whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_pong(port: int) -> bool:
    """Return whether the Redis on ``port`` answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class PrivateRedis:
    """A redis-server owned by this script: own temp dir, loopback only, nothing on disk."""

    def __init__(self, binary: str, port: int) -> None:
        self.binary = binary
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="djredis-example-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the redis:// URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING."""
        if self.port == FORBIDDEN_REDIS_PORT:
            raise fail(f"refusing to use port {FORBIDDEN_REDIS_PORT}; pick another Redis port")
        if port_in_use(self.port):
            raise fail(
                f"port {self.port} is already in use; set DJREDIS_EXAMPLE_REDIS_PORT or "
                "pass --redis-port"
            )
        log = self.dir / "redis.log"
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--logfile", str(log),
        ]  # fmt: skip
        # Own session: a Ctrl-C meant for the site does not kill Redis under it; we stop it.
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while not redis_pong(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                self.stop()
                raise fail(f"redis-server did not start on port {self.port}:\n{text}")
            time.sleep(0.05)
        say(f"private redis-server (pid {self.process.pid}) on {self.url}")

    def stop(self) -> None:
        """Stop the server by its PID and remove its temp dir."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        if process is not None:
            say(f"stopped redis-server (pid {process.pid})")


# -- step 4: Django --------------------------------------------------------------------------


def manage(env: dict[str, str], *args: str) -> None:
    """Run a manage.py command with the venv's python; fail on a non-zero exit."""
    subprocess.run([sys.executable, str(MANAGE), *args], env=env, cwd=EXAMPLE_DIR, check=True)


def start_site(env: dict[str, str], *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    """Start ``manage.py runserver`` in a process group of its own.

    runserver's autoreloader runs the server in a child process; with a group of its own
    both are stopped together by ``stop_site``, and a Ctrl-C reaches only this script.
    """
    command = [sys.executable, str(MANAGE), "runserver", *args]
    return subprocess.Popen(command, env=env, cwd=EXAMPLE_DIR, start_new_session=True, **popen)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group ``pgid`` if any of it is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def stop_site(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop runserver and its reloader child: SIGTERM to their group, SIGKILL to leftovers.

    The group is the one ``start_site`` created, led by our child's PID.
    """
    signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    time.sleep(0.2)  # the reloader child got the SIGTERM too; give it a moment
    signal_group(process.pid, signal.SIGKILL)
    process.wait()


def wait_for_http(base: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until the site answers at ``base``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered, even if with an error page
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise fail(f"the site did not answer at {base}") from None
            time.sleep(0.1)


def check_pages(base: str) -> list[str]:
    """Fetch every page once; return the problems found (an empty list when all is well)."""
    problems = []
    for path, expected in PAGES.items():
        try:
            with urllib.request.urlopen(base + path, timeout=10) as response:
                status, body = response.status, response.read().decode(errors="replace")
        except OSError as exc:  # HTTPError included
            problems.append(f"{path}: {exc}")
            continue
        if status != 200 or expected not in body:
            problems.append(f"{path}: HTTP {status}, {expected!r} not in the page")
        else:
            print(f"OK {path} ({len(body)} bytes)", flush=True)
    return problems


def run_check(env: dict[str, str], http_port: int) -> int:
    """Serve the site in the background and fetch each page once; return the exit code."""
    base = f"http://127.0.0.1:{http_port}"
    with tempfile.TemporaryFile() as log:
        server = start_site(env, "--noreload", f"127.0.0.1:{http_port}", stdout=log, stderr=log)
        try:
            wait_for_http(base + "/", server)
            problems = check_pages(base)
        finally:
            stop_site(server)
        if problems:
            log.seek(0)
            sys.stdout.write(log.read().decode(errors="replace"))
            print("FAILED:\n  " + "\n  ".join(problems), flush=True)
            return 1
    return 0


def run_foreground(env: dict[str, str], http_port: int) -> int:
    """Run runserver in the foreground until Ctrl-C; return its exit code."""
    say(f"reference site on http://127.0.0.1:{http_port}/ (Ctrl-C stops the site and Redis)")
    server = start_site(env, f"127.0.0.1:{http_port}")
    try:
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_site(server)


def env_port(name: str) -> int | None:
    """Return the port in environment variable ``name``, if set."""
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise fail(f"{name}={value!r} is not a port number") from None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, help="HTTP port (default 8000, $DJREDIS_EXAMPLE_PORT)")
    parser.add_argument(
        "--redis-port", type=int, help="Redis port (default 6399, $DJREDIS_EXAMPLE_REDIS_PORT)"
    )
    parser.add_argument(
        "--check", action="store_true", help="fetch every page once, print OK and exit"
    )
    return parser.parse_args(argv)


def raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into the same clean shutdown as Ctrl-C."""
    raise KeyboardInterrupt


def main(argv: Sequence[str]) -> int:
    """Set up, start Redis and the site, and clean up; return the exit code."""
    args = parse_args(argv)
    ensure_venv()
    http_port = args.port or env_port("DJREDIS_EXAMPLE_PORT")
    redis_port = args.redis_port or env_port("DJREDIS_EXAMPLE_REDIS_PORT")
    if args.check:  # free ports, so a check never collides with a site already running
        http_port = http_port or free_port()
        redis_port = redis_port or free_port()
    http_port = http_port or DEFAULT_HTTP_PORT
    redis_port = redis_port or DEFAULT_REDIS_PORT

    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    redis_server = PrivateRedis(redis_server_binary(), redis_port)
    try:
        redis_server.start()
        env = {**os.environ, "DJREDIS_EXAMPLE_REDIS_URL": redis_server.url}
        with tempfile.TemporaryDirectory(prefix="djredis-example-db-") as scratch:
            if args.check and "DJREDIS_EXAMPLE_DB" not in os.environ:
                env["DJREDIS_EXAMPLE_DB"] = str(Path(scratch) / "db.sqlite3")
            manage(env, "migrate", "--noinput", "--verbosity", "0" if args.check else "1")
            serve = run_check if args.check else run_foreground
            code = serve(env, http_port)
    except KeyboardInterrupt:
        code = 0
    except subprocess.CalledProcessError as exc:
        raise fail(f"{' '.join(map(str, exc.cmd))} exited with {exc.returncode}") from None
    finally:
        redis_server.stop()
    if args.check and code == 0:
        print("OK", flush=True)  # last line: everything served and stopped cleanly
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
