"""Run the reference site (example/) for tests, and talk to it over HTTP like a browser does.

``ExampleSite`` migrates a scratch SQLite database and serves ``reference.asgi`` under
uvicorn on a free port, against a Redis the test suite started. ``Visitor`` is one HTTP
client with its own cookie jar (one browser, as far as the site can tell), which posts
forms with their CSRF token.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests._servers import RedisServer, free_port

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "example"
DEMO_LOGIN = ("demo", "djredis-demo")  # reference/settings.py: DEMO_USERNAME, DEMO_PASSWORD
_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def celery_broker_problem(url: str) -> str | None:
    """Return why kombu cannot use a Redis broker with the installed redis-py, or None."""
    from kombu import Connection
    from kombu.exceptions import VersionMismatch

    try:
        with Connection(url) as connection:
            connection.default_channel  # noqa: B018  (opening the channel runs kombu's check)
    except VersionMismatch as exc:
        return str(exc)
    except ImportError as exc:  # the transport's own imports (kombu[redis] pulls them in)
        return f"kombu's Redis transport cannot be imported ({exc})"
    return None


class ExampleSite:
    """The reference site under uvicorn, on a free port, against ``redis_server``."""

    def __init__(self, redis_server: RedisServer, scratch: Path, workers: int = 1) -> None:
        self.workers = workers
        self.redis_server = redis_server
        self.scratch = scratch
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = scratch / "uvicorn.log"
        self.env = {
            **os.environ,
            "DJREDIS_EXAMPLE_REDIS_URL": redis_server.url(0),
            "DJREDIS_EXAMPLE_DB": str(scratch / "db.sqlite3"),
            "DJREDIS_EXAMPLE_MAIL_DIR": str(scratch / "mail"),
            # Short enough for tests: beat's cleanup every second, order retries 0.5 s apart.
            "DJREDIS_EXAMPLE_CLEANUP_SECONDS": "1",
            "DJREDIS_EXAMPLE_ORDER_RETRY_SECONDS": "0.5",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)  # pytest's tests.settings is not ours
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ExampleSite:
        """Migrate, start uvicorn and wait until the home page answers."""
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
            cwd=EXAMPLE_DIR,
            env=self.env,
            check=True,
            capture_output=True,
        )
        command = [
            sys.executable, "-m", "uvicorn", "reference.asgi:application",
            "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log",
        ]  # fmt: skip
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=EXAMPLE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.base + "/", timeout=2):
                    return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the site did not start:\n{self.log()}") from None
                time.sleep(0.1)

    def start_celery(self, *args: str) -> subprocess.Popen[bytes]:
        """Start ``celery -A reference <args>`` with the site's environment, logging to scratch."""
        name = args[0]
        with (self.scratch / f"celery-{name}.log").open("wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "reference", *args],
                cwd=EXAMPLE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def celery_log(self, name: str) -> str:
        """Return the end of the log of the celery ``name`` process (worker or beat)."""
        return (self.scratch / f"celery-{name}.log").read_text(errors="replace")[-4000:]

    def log(self) -> str:
        """Return the end of uvicorn's output."""
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """Stop uvicorn (by its PID)."""
        if self.process is not None:
            stop_process(self.process)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Stop ``process`` with SIGTERM, then SIGKILL if it is still there after ``timeout``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Reply:
    """One HTTP response: status, final URL, headers (names in lowercase) and body text."""

    status: int
    url: str
    headers: dict[str, str]
    text: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Visitor:
    """One browser, as the site sees it: its own cookies; forms posted with their token."""

    def __init__(self, base: str, user_agent: str = "Mozilla/5.0 (X11; Linux) Firefox/130.0"):
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        cookie_handler = urllib.request.HTTPCookieProcessor(self.cookies)
        self.opener = urllib.request.build_opener(cookie_handler)
        self.raw_opener = urllib.request.build_opener(cookie_handler, _NoRedirect())
        self.user_agent = user_agent

    def request(
        self, path: str, data: dict[str, str] | None = None, *, follow: bool = True
    ) -> Reply:
        """GET ``path`` (POST ``data`` when given, with the CSRF token from the cookie)."""
        body = None
        headers = {"User-Agent": self.user_agent}
        if data is not None:
            token = next((c.value for c in self.cookies if c.name == "csrftoken"), "")
            body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **data}).encode()
            headers["Referer"] = self.base + path
        request = urllib.request.Request(self.base + path, data=body, headers=headers)
        opener = self.opener if follow else self.raw_opener
        try:
            with opener.open(request, timeout=15) as response:
                return Reply(
                    response.status,
                    response.url,
                    {k.lower(): v for k, v in response.headers.items()},
                    response.read().decode(),
                )
        except urllib.error.HTTPError as exc:
            headers = {k.lower(): v for k, v in exc.headers.items()}
            return Reply(exc.code, exc.url, headers, exc.read().decode())

    def get(self, path: str, *, follow: bool = True) -> Reply:
        """GET ``path``."""
        return self.request(path, follow=follow)

    def post(self, path: str, data: dict[str, str], *, follow: bool = True) -> Reply:
        """POST a form to ``path``, first getting a CSRF cookie from the login page if needed."""
        if not any(c.name == "csrftoken" for c in self.cookies):
            self.get("/login/")
        return self.request(path, data, follow=follow)

    def log_in(self, username: str = DEMO_LOGIN[0], password: str = DEMO_LOGIN[1]) -> Reply:
        """Log in through the login form."""
        self.get("/login/")
        return self.post("/login/", {"username": username, "password": password})
