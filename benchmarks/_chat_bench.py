"""The end-to-end part of ``benchmarks.channels``: a chat room over WebSockets under uvicorn,
and the benchmark's section of docs/benchmarks.md with its chart.

One uvicorn worker serves ``benchmarks._chat_site:app`` (the guide's ``ChatConsumer``) with
the contender's layer; N clients (the ``websockets`` library, in the benchmark process)
join one room, then each sends its messages back to back. Every client receives every
message (N x N x messages deliveries); a delivery's latency is the time from its send to
its arrival at that client. Reported: deliveries/s over the whole exchange, p50 and p99
latency, and deliveries lost (a layer may drop messages over capacity).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from . import _report
from ._asgi import serve
from ._chat_site import LAYERS

__all__ = ["ChatResults", "configure_client_side", "markdown_section", "run"]

ROOM = "/ws/chat/bench/"
SETTLE = 2.0  # seconds a client waits for a missing delivery before giving up


def configure_client_side() -> None:
    """Give the benchmark process a minimal Django configuration (layers read settings)."""
    from django.conf import settings

    if not settings.configured:
        settings.configure(SECRET_KEY="benchmark", INSTALLED_APPS=["channels"])
        import django

        django.setup()


@dataclass
class ChatResults:
    """Per contender, one (deliveries/s, p50 ms, p99 ms, lost) per round."""

    clients: int
    messages: int
    runs: dict[str, list[tuple[float, float, float, int]]] = field(default_factory=dict)
    HEADERS = ("contender", "deliveries/s", "p50 latency", "p99 latency", "lost")

    def median(self, name: str, index: int) -> float:
        return statistics.median(run[index] for run in self.runs[name])

    def rows(self) -> list[list[str]]:
        return [
            [
                name,
                f"{self.median(name, 0):,.0f}",
                f"{self.median(name, 1):.1f} ms",
                f"{self.median(name, 2):.1f} ms",
                str(sum(run[3] for run in runs)),
            ]
            for name, runs in self.runs.items()
        ]

    def target_rows(self) -> list[list[str]]:
        mine = self.median("djredis", 0)
        result = []
        for name in LAYERS:
            if name == "djredis" or name not in self.runs:
                continue
            ratio = mine / self.median(name, 0)
            p99 = self.median("djredis", 2) / self.median(name, 2)
            result.append(
                [
                    f"chat deliveries/s vs {name}",
                    f"{ratio:.1f}x (p99 {p99:.2f}x theirs)",
                    "report",
                    "-",
                ]
            )
        return result


async def _room(base: str, clients: int, messages: int) -> tuple[float, float, float, int]:
    from websockets.asyncio.client import connect

    url = base.replace("http://", "ws://") + ROOM
    sockets = [await connect(url) for _ in range(clients)]
    await asyncio.sleep(0.3)  # every consumer has joined the group
    expected = clients * messages
    latencies: list[float] = []
    lost = 0

    async def listen(sock: Any) -> None:
        nonlocal lost
        got = 0
        while got < expected:
            try:
                text = await asyncio.wait_for(sock.recv(), SETTLE)
            except asyncio.TimeoutError:
                lost += expected - got
                return
            sent_at = float(json.loads(json.loads(text)["message"])["t"])
            latencies.append(time.perf_counter() - sent_at)
            got += 1

    async def talk(sock: Any, number: int) -> None:
        for index in range(messages):
            body = json.dumps({"t": time.perf_counter(), "from": number, "i": index})
            await sock.send(json.dumps({"message": body}))

    start = time.perf_counter()
    listeners = [asyncio.ensure_future(listen(sock)) for sock in sockets]
    await asyncio.gather(*(talk(sock, n) for n, sock in enumerate(sockets)))
    await asyncio.gather(*listeners)
    elapsed = time.perf_counter() - start - (SETTLE if lost else 0)
    for sock in sockets:
        await sock.close()
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
    return len(latencies) / elapsed, p50, p99, lost


def run(server: Any, config: Any) -> ChatResults:
    """Serve the chat with each layer in turn, rotated every round; load it."""
    from tests._servers import free_port

    results = ChatResults(config.chat_clients, config.chat_messages)
    names = list(LAYERS)
    for number in range(config.chat_rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            server.client().flushall()
            env = {"DJREDIS_BENCH_LAYER": name, "DJREDIS_BENCH_REDIS": server.url(0)}
            with serve("benchmarks._chat_site:app", free_port(), env) as base:
                outcome = asyncio.run(_room(base, config.chat_clients, config.chat_messages))
            results.runs.setdefault(name, []).append(outcome)
            print(f"  chat {name}: {outcome[0]:,.0f} deliveries/s", file=sys.stderr)
    return results


def _chart(samples: Any, chat: ChatResults | None) -> str:
    import matplotlib.pyplot as plt

    from ._charts import PALETTE, grouped_bars

    names = list(LAYERS)
    colors = dict(zip(names, PALETTE[2:], strict=False))
    groups = ["burst msg/s", "fan-out deliveries/s"] + (["chat deliveries/s"] if chat else [])
    keys = {"burst msg/s": "burst", "fan-out deliveries/s": "fan-out"}

    def value(group: str, name: str) -> float | None:
        if group in keys:
            return float(samples.median(keys[group], name))
        if chat is None or name not in chat.runs:
            return None
        return chat.median(name, 0)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    grouped_bars(ax, groups, names, value, colors, lambda v: f"{v:,.0f}")
    ax.set_yscale("log")
    ax.set_ylim(top=ax.get_ylim()[1] * 4)  # room for the labels above the tallest bar
    ax.set_ylabel("per second (log scale, higher is better)")
    ax.set_title("Channel layers: djredis vs channels_redis (same run)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path = _report.DOCS_DIR / "benchmarks-channels.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def markdown_section(
    config: Any, samples: Any, commands: dict[str, str], chat: ChatResults | None, version: str
) -> str:
    from .channels import HEADERS, MODULE, TARGET_HEADERS, rows, target_rows

    chart = _chart(samples, chat)
    chat_table = (
        _report.markdown_table(ChatResults.HEADERS, chat.rows(), "lrrrr")
        if chat
        else "(not run: `--chat-rounds 0`)"
    )
    pairs = "\n".join(f"- {name}: {text}" for name, text in commands.items())
    return f"""{_report.section_head("Channel layers", MODULE, version)}

### Method

- One `redis-server` started for the run on 127.0.0.1; each layer on its own database, in
  one process and event loop. Contenders: `djredis.channels.RedisChannelLayer`,
  `channels_redis.core.RedisChannelLayer` and `channels_redis.pubsub.RedisPubSubChannelLayer`
  (4.3), capacity 5,000 (core and djredis), everything else default, except that
  channels_redis's hosts get `socket_timeout: None`: its issue #422 workaround (with redis-py
  8's 5 s default its idle readers fail and runs hang).
- {config.rounds} interleaved rounds, order rotated each round; medians over rounds.
  *burst*: {config.burst} `send`s to one channel, then {config.burst} `receive`s.
  *round trip*: `send` then `receive` on one channel, {config.pairs} times.
  *fan-out*: `group_send` to {GROUP} process-local channels then every member receives,
  {config.fanouts} times.
  *in-process bound*: the fan-out's 100 copies put straight into djredis's mailboxes (no
  Redis, no serializing), then the same 100 receives: the most any layer that talks to
  Redis could reach in that scenario.
- Redis commands per send+receive pair: `MONITOR`, commands run inside Lua scripts not
  counted (they are not round trips).
- *chat*: `uvicorn benchmarks._chat_site:app` (one worker) serving the guide's
  `ChatConsumer` with the guide's CONFIG (capacity 1500, expiry 10; pub/sub takes neither),
  {config.chat_clients} WebSocket clients in one room each sending {config.chat_messages}
  messages back to back; {config.chat_rounds} round(s), a fresh server per contender and
  round. Latency = send to arrival, per delivery.
- Machine: 2 logical CPUs shared by redis-server, the benchmark, uvicorn and other work
  running at the same time; absolute numbers are low, ratios are what to read.

![Channel layers chart]({chart})

### Micro-benchmarks

{_report.markdown_table(HEADERS, rows(samples), "llrrr")}

Redis commands per send + receive:

{pairs}

### Chat over WebSockets

{chat_table}

### Targets

{_report.markdown_table(TARGET_HEADERS, target_rows(samples, commands, chat), "llll")}
"""


GROUP = 100
