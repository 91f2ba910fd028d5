#!/usr/bin/env python
"""Run Django's own cache backend tests (BaseCacheTests) against djredis, by hand.

    .venv/bin/python scripts/django_contract.py                 # the whole class
    .venv/bin/python scripts/django_contract.py -k test_touch   # extra runtests.py options
    .venv/bin/python scripts/django_contract.py --redis-url redis://127.0.0.1:6390/3

Finds or downloads the sdist of the installed Django once (see _sources.py), starts a
throw-away redis-server unless --redis-url is given (its DB is flushed by the tests!), and
streams Django's runtests.py output. The CI entry point is
tests/contract/django_contract/test_django_cache_suite.py; this script shares its harness.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests._servers import RedisServer
from tests.contract.django_contract import _harness, _sources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--redis-url", help="use this Redis DB (it gets FLUSHDB) instead of starting a server"
    )
    args, runtests_args = parser.parse_known_args(argv)
    try:
        django_tests = _harness.prepare_django_tests()
    except _sources.DjangoSourceUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"Django tests: {django_tests}", flush=True)
    if args.redis_url:
        return _run(django_tests, args.redis_url, runtests_args)
    server = RedisServer().start()
    try:
        return _run(django_tests, server.url(0), runtests_args)
    finally:
        server.stop()


def _run(django_tests: Path, redis_url: str, runtests_args: list[str]) -> int:
    result = _harness.run_suite(
        django_tests, redis_url, tuple(runtests_args), capture=False, timeout=None
    )
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
