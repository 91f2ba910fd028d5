"""Worker processes (``runworker``-style consumers of one plain channel) killed mid-backlog:
every message sent is received exactly once by the workers that live on (standalone;
replicas, Sentinel and Cluster marked slow)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from djredis.channels import RedisChannelLayer
from tests._channels import layer_hosts

pytestmark = [pytest.mark.topologies, pytest.mark.asyncio, pytest.mark.timeout(180)]

# A worker: receives from the channel, records each message (an O_APPEND write reaches the
# kernel at once, so a SIGKILL loses no record), and kills itself after ``die_after``
# messages (0: never), as a worker process crashing or being OOM-killed would.
WORKER = r"""
import asyncio, json, os, signal, sys

from djredis.channels import RedisChannelLayer

hosts, channel, record = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
die_after = int(sys.argv[4])


async def main():
    layer = RedisChannelLayer(hosts=hosts, capacity=10000, expiry=120)
    fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    handled = 0
    while True:
        message = await layer.receive(channel)
        os.write(fd, b"%d\n" % message["n"])
        handled += 1
        if handled == die_after:
            os.kill(os.getpid(), signal.SIGKILL)


asyncio.run(main())
"""


class Workers:
    def __init__(self, hosts: list[Any], channel: str, directory: Path) -> None:
        self.hosts, self.channel, self.directory = hosts, channel, directory
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}

    def start(self, die_after: int) -> subprocess.Popen[bytes]:
        record = self.directory / f"worker-{len(self.processes)}.txt"
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                json.dumps(self.hosts),
                self.channel,
                str(record),
                str(die_after),
            ],
            env=self.env,
        )
        self.processes.append(process)
        return process

    def received(self) -> list[int]:
        numbers = []
        for record in self.directory.glob("worker-*.txt"):
            numbers += [int(line) for line in record.read_text().split()]
        return numbers

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)


async def test_killed_workers_lose_no_message_and_none_is_received_twice(
    topology: Any, redis_client: Any, tmp_path: Path
) -> None:
    hosts = layer_hosts(topology)
    layer = RedisChannelLayer(hosts=hosts, capacity=10000, expiry=120)
    total, before = 300, 200
    for number in range(before):
        await layer.send("tasks", {"type": "task", "n": number})
    workers = Workers(hosts, "tasks", tmp_path)
    try:
        # Each alone with the backlog: one dies after 1 message, the next after 25.
        for die_after, handled in ((1, 1), (25, 26)):
            dying = workers.start(die_after=die_after)
            assert await asyncio.to_thread(dying.wait, 30) == -signal.SIGKILL
            assert sorted(workers.received()) == list(range(handled))
        workers.start(die_after=0)  # two workers compete for what is left
        workers.start(die_after=0)
        for number in range(before, total):  # and for more work sent meanwhile
            await layer.send("tasks", {"type": "task", "n": number})
        deadline = time.monotonic() + 60
        while len(workers.received()) < total and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        workers.stop()
        await layer.close_pools()
    counts = Counter(workers.received())
    assert sorted(counts) == list(range(total))  # none lost
    assert set(counts.values()) == {1}  # none twice
