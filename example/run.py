#!/usr/bin/env python3
"""Run the djredis reference site: ``python3 example/run.py``.

From a fresh clone on Debian this:

1. uses this python if it already has what the site needs (Django, djredis, uvicorn,
   celery); otherwise creates ``.venv`` and ``pip install -e '.[example]'`` into it, then
   re-runs itself inside it;
2. checks that the HTTP port is free (``--port`` or ``$DJREDIS_EXAMPLE_PORT``, default
   8000) before anything else;
3. uses the Redis at ``$REDIS_URL`` when set; otherwise installs ``redis-server`` with
   apt-get if it is missing and starts a private one on a free port (``--redis-port``
   or ``$DJREDIS_EXAMPLE_REDIS_PORT`` to choose), in a temp dir, with no persistence and
   ``maxmemory-policy noeviction`` (it is also the Celery broker);
4. runs the migrations (SQLite in example/.data/, or ``$DATABASE_URL`` for PostgreSQL),
   which create the demo user;
5. starts the site under uvicorn (ASGI), a Celery worker and Celery beat, prints the URL
   and the login, and stops all of them, and the private Redis, on Ctrl-C.

``--production`` runs with ``DEBUG = False`` and two uvicorn workers. ``--check`` starts
the same stack on free ports, fetches every page once over HTTP, prints OK and exits 0: a
smoke test for CI. It never touches a Redis on 6379 unless ``$REDIS_URL`` says so.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

EXAMPLE_DIR = Path(__file__).resolve().parent
REPO_DIR = EXAMPLE_DIR.parent
VENV_DIR = REPO_DIR / ".venv"
MANAGE = EXAMPLE_DIR / "manage.py"
DEFAULT_HTTP_PORT = 8000
FORBIDDEN_REDIS_PORT = 6379  # the machine's own Redis, if any: never ours to start on
REQUIRED_MODULES = ("django", "djredis", "redis", "uvicorn", "celery", "channels", "websockets")
DEMO_LOGIN = ("demo", "djredis-demo")  # reference/settings.py: DEMO_USERNAME, DEMO_PASSWORD
# Each page of the site, with a text it must contain.
PAGES = {
    "/": "Redis for Django",
    "/caches/": "api_cache",
    "/cache-page/": "cache_page",
    "/cache-class/": "method_decorator",
    "/fragment/": "Template fragment caching",
    "/counter/": "cache.incr",
    "/api-tour/": "get_or_set",
    "/articles/": "post_save",
    "/async/": "aget_many",
    "/memoize/": "stampede protection",
    "/per-user/": "vary_on_cookie",
    "/ratelimit/": "Retry-After",
    "/login/": "Demo account",
    "/leaderboard/": "get_redis_connection",
    "/notifications/": "pub/sub",
    "/lock/": "lock-protected",
    "/chat/": "AuthMiddlewareStack",
    "/chat/lobby/": "RedisChannelLayer",
    "/tasks/": "Celery tasks on a Redis broker",
    "/django-tasks/": "djredis.tasks.CeleryBackend",
    "/dashboard/": "server_stats",
    "/health/": '"status": "ok"',
}


PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def dying_with_us(signum: int = signal.SIGTERM) -> Any:
    """Return a ``preexec_fn`` that makes a child get ``signum`` when this process dies.

    Each service runs in its own session (a Ctrl-C meant for the site must not reach Redis
    before the site has stopped), so a process group alone would not stop them: if this
    script is killed with SIGKILL, nothing would. Linux's parent-death signal does. The
    check of the parent's pid closes the race of a parent dying before prctl runs.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: the child only calls it
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def say(message: str) -> None:
    """Print a progress line (quietly skipped once the terminal or pipe is gone)."""
    with contextlib.suppress(OSError):
        print(f"[run.py] {message}", flush=True)


def fail(message: str) -> SystemExit:
    """Return a SystemExit that prints ``message`` and exits 1."""
    return SystemExit(f"[run.py] error: {message}")


# -- step 1: what the site needs ---------------------------------------------------------------


def apt_install(*packages: str) -> None:
    """Install Debian packages with apt-get, through sudo when not root."""
    prefix: list[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            raise fail(
                f"{' '.join(packages)} is missing: install it (apt-get install "
                f"{' '.join(packages)}) or run as root"
            )
        prefix = ["sudo"]
    if not shutil.which("apt-get"):
        raise fail(f"{' '.join(packages)} is missing: install it with your package manager")
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
    """Return whether ``python`` can import everything the site needs."""
    check = [str(python), "-c", f"import {', '.join(REQUIRED_MODULES)}"]
    return subprocess.run(check, capture_output=True).returncode == 0


def ensure_requirements() -> None:
    """Run in a python that has the site's requirements: this one, or .venv (made if need be)."""
    if has_requirements(sys.executable):
        return
    if not in_project_venv() and not venv_python().exists():
        create_venv()
    python = sys.executable if in_project_venv() else str(venv_python())
    if not has_requirements(python):
        say("installing djredis and the site's requirements (pip install -e '.[example]')")
        install = [python, "-m", "pip", "install", "-e", f"{REPO_DIR}[example]"]
        if subprocess.run(install).returncode != 0:
            raise fail(
                f"pip could not install the requirements into {VENV_DIR}: check the network, "
                f"or remove {VENV_DIR} and run again"
            )
    if not in_project_venv():
        os.execv(python, [python, str(Path(__file__).resolve()), *sys.argv[1:]])


# -- step 2 and 3: ports and Redis -------------------------------------------------------------


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


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Return whether something accepts connections on ``host``:``port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_pong(host: str, port: int) -> bool:
    """Return whether the Redis on ``host``:``port`` answers PING (a password-less one)."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
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
            raise fail(
                f"refusing to start a Redis on port {FORBIDDEN_REDIS_PORT}: pass another "
                "--redis-port, or set REDIS_URL to use the Redis already there"
            )
        if port_in_use(self.port):
            raise fail(
                f"Redis port {self.port} is already in use: pass --redis-port {free_port()} "
                "(or set DJREDIS_EXAMPLE_REDIS_PORT), or set REDIS_URL to use that Redis"
            )
        log = self.dir / "redis.log"
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            # It is also the Celery broker: never evict a queued task (see the tasks page).
            "--maxmemory-policy", "noeviction",
            "--dir", str(self.dir),
            "--logfile", str(log),
        ]  # fmt: skip
        # Own session: a Ctrl-C meant for the site does not kill Redis under it; we stop it.
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=dying_with_us(),
        )
        deadline = time.monotonic() + timeout
        while not redis_pong("127.0.0.1", self.port):
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


def check_redis_url(url: str) -> None:
    """Fail with a clear message unless the Redis at ``url`` answers."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise fail(f"REDIS_URL={url!r} is not a redis:// URL (for example redis://host:6379/0)")
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if parts.scheme == "redis" and not redis_pong(host, port):
        raise fail(
            f"REDIS_URL={url!r}: nothing answers PING on {host}:{port}; start that "
            "Redis, or unset REDIS_URL to let run.py start a private one"
        )
    say(f"using the Redis at REDIS_URL ({host}:{port}); databases 0-5 of it")


# -- step 4 and 5: Django, uvicorn, Celery ---------------------------------------------------


def manage(env: dict[str, str], *args: str) -> None:
    """Run a manage.py command with this python; fail on a non-zero exit."""
    subprocess.run([sys.executable, str(MANAGE), *args], env=env, cwd=EXAMPLE_DIR, check=True)


class Services:
    """The processes run.py starts next to Redis: uvicorn, a Celery worker, Celery beat.

    Each runs in a process group of its own, so a Ctrl-C reaches only this script, which
    then stops them in order: SIGTERM to the group, SIGKILL to anything left.
    """

    def __init__(self, env: dict[str, str], scratch: Path, quiet: bool) -> None:
        self.env = env
        self.scratch = scratch
        self.quiet = quiet
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self, name: str, *args: str, death_signal: int = signal.SIGTERM
    ) -> subprocess.Popen[bytes]:
        """Start ``python -m <args>`` from example/ as the service ``name``.

        ``death_signal`` is what it gets if this script dies without stopping it.
        """
        output: Any = None
        if self.quiet:
            output = (self.scratch / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", *args],
            env=self.env,
            cwd=EXAMPLE_DIR,
            start_new_session=True,
            preexec_fn=dying_with_us(death_signal),
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
        )
        self.processes.append((name, process))
        return process

    def logs(self) -> str:
        """Return the end of each quiet service's log."""
        return "\n".join(
            f"--- {name}\n{(self.scratch / f'{name}.log').read_text(errors='replace')[-3000:]}"
            for name, _ in self.processes
            if (self.scratch / f"{name}.log").exists()
        )

    def dead(self) -> list[str]:
        """Return the names of the services that exited."""
        return [name for name, process in self.processes if process.poll() is not None]

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every service, last started first."""
        for name, process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            say(f"stopped {name} (pid {process.pid})")
        self.processes.clear()


def celery_problem(env: dict[str, str]) -> str:
    """Return why Celery cannot run on the installed packages ("" when it can)."""
    code = (
        "import django; django.setup(); from reference.celery import broker_problem; "
        "print(broker_problem() or '')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "DJANGO_SETTINGS_MODULE": "reference.settings"},
        cwd=EXAMPLE_DIR, capture_output=True, text=True,
    )  # fmt: skip
    return result.stdout.strip() if result.returncode == 0 else result.stderr.strip()[-500:]


def start_services(services: Services, http_port: int, production: bool) -> None:
    """Start uvicorn, the Celery worker and Celery beat (unless Celery cannot run here)."""
    uvicorn = ["uvicorn", "reference.asgi:application", "--host", "127.0.0.1",
               "--port", str(http_port)]  # fmt: skip
    if production:
        uvicorn += ["--workers", "2", "--no-access-log"]
    services.start("uvicorn", *uvicorn)
    problem = celery_problem(services.env)
    if problem:
        say(f"not starting Celery: {problem} (the tasks page says so too)")
        return
    services.start("celery-worker", "celery", "-A", "reference", "worker", "--loglevel=info",
                   "--concurrency=2")  # fmt: skip
    schedule = services.scratch / "celerybeat-schedule"
    # Beat's SIGTERM handler saves its schedule through the broker, which is dying with us
    # when this script is killed: it would retry forever. Its schedule file is scratch.
    services.start("celery-beat", "celery", "-A", "reference", "beat", "--loglevel=info",
                   f"--schedule={schedule}", death_signal=signal.SIGKILL)  # fmt: skip


def wait_for_http(base: str, services: Services, timeout: float = 30.0) -> None:
    """Wait until the site answers at ``base``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered, even if with an error page
        except OSError:
            dead = services.dead()
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else "timed out"
                raise fail(
                    f"the site did not answer at {base} ({why})\n{services.logs()}"
                ) from None
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
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--port", type=int, help="HTTP port (default 8000, $DJREDIS_EXAMPLE_PORT)")
    parser.add_argument("--redis-port", type=int, help="private Redis port (default: a free one)")
    parser.add_argument(
        "--production", action="store_true", help="DEBUG = False, two uvicorn workers"
    )
    parser.add_argument(
        "--check", action="store_true", help="fetch every page once, print OK and exit"
    )
    return parser.parse_args(argv)


def raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into the same clean shutdown as Ctrl-C."""
    raise KeyboardInterrupt


def check_database_url() -> None:
    """Fail with the fix when DATABASE_URL names PostgreSQL and no driver is installed."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        return
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("postgres", "postgresql"):
        raise fail(
            f"DATABASE_URL={scheme}://...: only postgres://user:password@host:port/name "
            "is understood; unset DATABASE_URL for the embedded SQLite database"
        )
    probe = [
        sys.executable,
        "-c",
        "import importlib.util as u, sys; "
        "sys.exit(not (u.find_spec('psycopg') or u.find_spec('psycopg2')))",
    ]
    if subprocess.run(probe).returncode != 0:
        raise fail(
            f"DATABASE_URL names PostgreSQL but no driver is installed: run "
            f"{sys.executable} -m pip install 'psycopg[binary]', or unset DATABASE_URL"
        )


def http_port_of(args: argparse.Namespace) -> int:
    """Return the HTTP port to serve on; fail at once, with the fix, if it is taken."""
    port = args.port or env_port("DJREDIS_EXAMPLE_PORT")
    if port is None:
        port = free_port() if args.check else DEFAULT_HTTP_PORT
    if port_in_use(port):
        raise fail(
            f"port {port} is busy (something already listens on 127.0.0.1:{port}); "
            f"run again with --port {free_port()} (or set DJREDIS_EXAMPLE_PORT)"
        )
    return port


def serve(args: argparse.Namespace, env: dict[str, str], http_port: int, scratch: Path) -> int:
    """Migrate, start the services, then check the pages or wait for Ctrl-C."""
    manage(env, "migrate", "--noinput", "--verbosity", "0" if args.check else "1")
    services = Services(env, scratch, quiet=args.check)
    base = f"http://127.0.0.1:{http_port}"
    try:
        start_services(services, http_port, args.production)
        wait_for_http(base + "/", services)
        if args.check:
            problems = check_pages(base)
            if problems:
                print(services.logs() + "\nFAILED:\n  " + "\n  ".join(problems), flush=True)
                return 1
            return 0
        say(f"the reference site is on {base}/")
        say(f"log in as {DEMO_LOGIN[0]} / {DEMO_LOGIN[1]}; Ctrl-C stops everything")
        while not services.dead():
            time.sleep(0.5)
        raise fail(f"{', '.join(services.dead())} exited; stopping the rest")
    finally:
        services.stop()


def main(argv: Sequence[str]) -> int:
    """Set up, start Redis and the site, and clean up; return the exit code."""
    args = parse_args(argv)
    ensure_requirements()
    http_port = http_port_of(args)  # before Redis and the migrations: fail fast
    check_database_url()

    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if args.production:
        env["DJREDIS_EXAMPLE_DEBUG"] = "0"
    if args.production and "PROMETHEUS_MULTIPROC_DIR" not in env:
        # Two workers: djredis.metrics counts in files both write, so the dashboard's hit
        # ratio is the whole site's (prometheus_client's multiprocess mode). Emptied here,
        # before any worker starts.
        metrics_dir = EXAMPLE_DIR / ".data" / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    redis_server: PrivateRedis | None = None
    redis_url = os.environ.get("REDIS_URL")
    code = 1
    try:
        if redis_url:
            check_redis_url(redis_url)
            env["DJREDIS_EXAMPLE_REDIS_URL"] = redis_url
        else:
            redis_port = args.redis_port or env_port("DJREDIS_EXAMPLE_REDIS_PORT") or free_port()
            redis_server = PrivateRedis(redis_server_binary(), redis_port)
            redis_server.start()
            env["DJREDIS_EXAMPLE_REDIS_URL"] = redis_server.url
        with tempfile.TemporaryDirectory(prefix="djredis-example-") as scratch:
            if args.check and "DJREDIS_EXAMPLE_DB" not in os.environ:
                env["DJREDIS_EXAMPLE_DB"] = str(Path(scratch) / "db.sqlite3")
                env.setdefault("DJREDIS_EXAMPLE_MAIL_DIR", str(Path(scratch) / "mail"))
            code = serve(args, env, http_port, Path(scratch))
    except KeyboardInterrupt:
        code = 0
    except subprocess.CalledProcessError as exc:
        raise fail(f"{' '.join(map(str, exc.cmd))} exited with {exc.returncode}") from None
    finally:
        if redis_server is not None:
            redis_server.stop()
    if args.check and code == 0:
        print("OK", flush=True)  # last line: everything served and stopped cleanly
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
