#!/usr/bin/env python3
"""Build djredis as it would be published, install the wheel in a fresh venv, and use it.

    python3 scripts/check_wheel.py                 # build, twine check, install, smoke
    python3 scripts/check_wheel.py --work DIR      # where the venvs and dist/ go

A file missing from the wheel (a ``.lua`` script, ``py.typed``) or metadata that does not
render fails here, where an editable install would hide it. The smoke venv has only the
required dependencies (Django, redis-py), so it also proves that each optional feature
names its extra when that extra is missing. The smoke talks to a private redis-server on a
Unix socket in a temporary directory: no port is taken, nothing on 6379 is touched.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run by the wheel's venv, from a directory outside the checkout, so that ``import djredis``
# can only find the installed wheel.
SMOKE = textwrap.dedent(
    """
    import importlib, importlib.resources as resources, shutil, subprocess, sys, tempfile, time
    from pathlib import Path

    import djredis

    OPTIONAL = [
        ("msgpack", "SERIALIZER", "msgpack"),
        ("lz4", "COMPRESSOR", "lz4"),
        ("zstd", "COMPRESSOR", "zstd"),
    ]
    assert "site-packages" in djredis.__file__, djredis.__file__

    package = resources.files("djredis")
    scripts = sorted(p.name for p in (package / "lua").iterdir() if p.name.endswith(".lua"))
    expected = sys.argv[1].split(",")
    missing = sorted(set(expected) - set(scripts))
    if missing:
        sys.exit(f"lua scripts missing from the wheel: {missing}")
    if not (package / "py.typed").is_file():
        sys.exit("py.typed missing from the wheel")

    # Each optional feature, without its extra, says which extra to install.
    for module, extra in [
        ("djredis.channels", "djredis[channels]"),
        ("djredis.ratelimit.drf", "djredis[drf]"),
    ]:
        try:
            importlib.import_module(module)
        except ImportError as error:
            if extra not in str(error):
                sys.exit(f"import {module} without its extra: {error!r} does not name {extra}")
        else:
            sys.exit(f"import {module} worked without {extra}: is the extra in the wheel's venv?")

    directory = tempfile.mkdtemp(prefix="djredis-wheel-")
    socket_path = f"{directory}/redis.sock"
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", socket_path, "--save", "",
         "--dir", directory],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not Path(socket_path).exists():
            if time.monotonic() > deadline:
                sys.exit("redis-server did not open its socket")
            time.sleep(0.05)

        from django.conf import settings
        location = f"unix://{socket_path}?db=0"
        settings.configure(
            CACHES={
                "default": {"BACKEND": "djredis.cache.RedisCache", "LOCATION": location},
                **{
                    extra: {
                        "BACKEND": "djredis.cache.RedisCache",
                        "LOCATION": location,
                        "KEY_PREFIX": extra,
                        "OPTIONS": {option: value},
                    }
                    for extra, option, value in OPTIONAL
                },
            },
        )
        import django
        django.setup()
        from django.core.cache import caches
        from django.core.exceptions import ImproperlyConfigured

        cache = caches["default"]
        cache.set("greeting", {"hello": "wheel"}, 30)
        if cache.get("greeting") != {"hello": "wheel"}:
            sys.exit("a value did not round-trip through the installed wheel")
        cache.set("hits", 1)
        if cache.incr("hits") != 2 or cache.get("hits") != 2:
            sys.exit(f"incr (a Lua script from the wheel) gave {cache.get('hits')!r}")
        for extra, option, value in OPTIONAL:
            try:
                caches[extra].set("k", "v" * 1000)
            except ImproperlyConfigured as error:
                if f"djredis[{extra}]" not in str(error):
                    sys.exit(f"{option} {value}: {error!r} names no djredis[{extra}]")
            else:
                sys.exit(f"{option} = {value!r} worked without djredis[{extra}] installed")
        print("wheel smoke passed:", djredis.__file__, f"{len(scripts)} lua scripts")
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(directory, ignore_errors=True)
    """
)


def run(*cmd: str, **kwargs: object) -> None:
    """Run a command, echoing it, and stop (exit 1) on failure."""
    print("+", " ".join(cmd), flush=True)
    if subprocess.run(cmd, check=False, **kwargs).returncode != 0:  # type: ignore[call-overload]
        sys.exit(f"failed: {' '.join(cmd)}")


def main() -> int:
    """Build, check, install and smoke-test the wheel and the sdist."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default=str(ROOT / ".ci" / "work" / "wheel"))
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    dist = work / "dist"
    tools = work / "tools"
    run(args.python, "-m", "venv", str(tools))
    pip = [str(tools / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    run(*pip, "build", "twine")
    run(str(tools / "bin" / "python"), "-m", "build", "--outdir", str(dist), str(ROOT))
    built = sorted(dist.iterdir())
    run(str(tools / "bin" / "twine"), "check", "--strict", *map(str, built))

    wheel = next(p for p in built if p.suffix == ".whl")
    smoke = work / "smoke"
    run(args.python, "-m", "venv", str(smoke))
    run(str(smoke / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel))
    scripts = ",".join(sorted(p.name for p in (ROOT / "src" / "djredis" / "lua").glob("*.lua")))
    with tempfile.TemporaryDirectory() as outside:
        (Path(outside) / "smoke.py").write_text(SMOKE)
        run(str(smoke / "bin" / "python"), "smoke.py", scripts, cwd=outside)

    # The sdist must build the same wheel on its own (no file left out of the sdist).
    sdist = next(p for p in built if p.name.endswith(".tar.gz"))
    rebuilt = work / "rebuilt"
    run(str(tools / "bin" / "python"), "-m", "pip", "wheel", "--quiet", "--no-deps",
        "--wheel-dir", str(rebuilt), str(sdist))  # fmt: skip
    names = {p.name for p in rebuilt.iterdir()}
    if wheel.name not in names:
        print(f"the sdist built {sorted(names)}, not {wheel.name}", file=sys.stderr)
        return 1
    print("wheel check passed:", ", ".join(p.name for p in built))
    return 0


if __name__ == "__main__":
    sys.exit(main())
