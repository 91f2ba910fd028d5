"""Start Celery workers of tests/site/tasks_project on a redis-server the suite started."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from tests._servers import RedisServer

from ._example import stop_process

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.site.tasks_project.settings"


class TasksWorkers:
    """Celery workers of the tasks project, each a real ``celery worker`` process."""

    def __init__(self, server: RedisServer, scratch: Path) -> None:
        self.broker_url = server.url(3)
        self.scratch = scratch
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "DJREDIS_TASKS_BROKER_URL": self.broker_url,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *queues: str, concurrency: int = 4) -> subprocess.Popen[bytes]:
        """Start a worker consuming ``queues`` and wait until it is ready to receive."""
        log_path = self.scratch / f"worker-{name}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "tests.site.tasks_project.celery_app",
            "worker", "--loglevel=info", "--pool=threads", f"--concurrency={concurrency}",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            f"--hostname={name}@%h", "-Q", ",".join(queues),
        ]  # fmt: skip
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        deadline = time.monotonic() + 30
        while "ready." not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                stop_process(process)
                raise RuntimeError(f"worker {name} did not start:\n{self.log(name)}")
            time.sleep(0.1)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        """Stop one worker (warm shutdown, then kill)."""
        stop_process(process)
        if process in self.processes:
            self.processes.remove(process)

    def stop_all(self) -> None:
        for process in list(self.processes):
            self.stop(process)

    def log(self, name: str) -> str:
        path = self.scratch / f"worker-{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.broker_url)
