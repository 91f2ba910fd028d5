#!/usr/bin/env python3
"""Run the djredis test suite on a fresh machine: install what is missing, then pytest.

    python3 scripts/test.py                      # .venv with this python3, newest Django
    python3 scripts/test.py --require "django>=4.2,<5" --venv .ci/work/venv-dj42
    python3 scripts/test.py -- -k contract -x    # anything after -- goes to pytest

It installs redis-server (and Chromium, for the reference-site browser tests) with
apt-get when they are missing, creates the virtualenv, installs the package with its test
extras, and runs pytest. The tests start their own redis-server processes on free ports;
nothing listens on 6379 on their behalf and nothing there is touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*cmd: str, **kwargs: object) -> None:
    """Run a command, echoing it, and stop on failure."""
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def apt_install(*packages: str) -> None:
    """Install Debian packages, with sudo when not root."""
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(*sudo, "apt-get", "update", "-qq", env=env)
    run(*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages, env=env)


def ensure_system_packages(browser: bool) -> None:
    """Install redis-server and (for browser tests) chromium when they are missing."""
    missing = []
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if browser and not Path("/usr/bin/chromium").exists():
        missing.append("chromium")
    if missing:
        apt_install(*missing)


def ensure_venv(
    venv: Path, python: str, requirements: list[str], browser: bool, hiredis: bool
) -> Path:
    """Create ``venv`` if needed and install djredis with its test extras into it.

    Without ``hiredis`` the parser is uninstalled again, so the suite runs on the pure-Python
    RESP reader, as a plain ``pip install djredis`` has it.
    """
    venv_python = venv / "bin" / "python"
    if not venv_python.exists():
        run(python, "-m", "venv", str(venv))
    extras = "test,browser" if browser else "test"
    pip = [str(venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run(*pip, "-e", f"{ROOT}[{extras}]", *requirements)
    if not hiredis:
        run(str(venv_python), "-m", "pip", "uninstall", "--quiet", "--yes", "hiredis")
    return venv_python


def main() -> int:
    """Parse the arguments, prepare the machine, and run pytest."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter for the venv")
    parser.add_argument("--venv", default=str(ROOT / ".venv"), help="virtualenv directory")
    parser.add_argument(
        "--require",
        action="append",
        default=[],
        help="extra pip requirement, repeatable, e.g. --require 'django>=4.2,<5'",
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="skip the headless-Chromium page tests"
    )
    parser.add_argument(
        "--no-hiredis", action="store_true", help="test the pure-Python RESP reader (no hiredis)"
    )
    parser.add_argument("pytest_args", nargs="*", help="arguments for pytest (after --)")
    args = parser.parse_args()
    browser = not args.no_browser
    ensure_system_packages(browser)
    venv_python = ensure_venv(
        Path(args.venv), args.python, args.require, browser, hiredis=not args.no_hiredis
    )
    run(
        str(venv_python),
        "-c",
        "import django, redis, importlib.util as u; print('Django', "
        "django.__version__, 'redis-py', redis.__version__, 'hiredis', "
        "bool(u.find_spec('hiredis')))",
    )
    env = dict(os.environ)
    if not browser:
        env["DJREDIS_NO_BROWSER"] = "1"  # tests/conftest.py skips tests marked "browser"
    completed = subprocess.run(
        [str(venv_python), "-m", "pytest", *args.pytest_args], cwd=ROOT, env=env
    )
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())
