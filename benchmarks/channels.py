"""Compare djredis's channel layer with channels_redis's core and pub/sub layers.

Run from the project root::

    python -m benchmarks.channels            # full run; rewrites the "channels" section of docs
    python -m benchmarks.channels --quick    # a short smoke run; leaves docs/ alone

Scenarios, each contender in the same run, interleaved (order rotated every round):

- **burst**: ``send`` 1,000 messages to one channel, then ``receive`` them; messages/s;
- **round trip**: ``send`` then ``receive`` on one channel, one at a time; µs per pair, and
  the Redis commands one pair sends (``MONITOR``; commands run inside scripts excluded);
- **fan-out**: ``group_send`` to a group of 100 process-local channels, then every member
  receives; deliveries/s. Beside the contenders, an in-process bound: the same 100 copies
  put straight into djredis's mailboxes (no Redis, no serializing), then the same 100
  receives: what no layer that talks to Redis can beat in this scenario;
- **chat**: the guide's ``ChatConsumer`` under uvicorn, N WebSocket clients in one room, each
  sending messages back to back; deliveries/s and p99 delivery latency (see ``_chat_bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import _report
from ._chat_site import LAYERS
from ._harness import Results

if str(_report.PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(_report.PROJECT_ROOT))

from tests._servers import RedisServer  # needs the project root on sys.path

MODULE = "benchmarks.channels"
SECTION = "channels"
DJREDIS, CORE, PUBSUB = LAYERS  # contender names, in the tables' order
BURST, ROUND_TRIP, FANOUT = "burst", "round trip", "fan-out"
GROUP_SIZE = 100
BOUND = "in-process bound (no Redis)"


@dataclass
class Config:
    rounds: int
    burst: int
    pairs: int
    fanouts: int
    chat_rounds: int
    chat_clients: int
    chat_messages: int
    write_docs: bool


def make_layer(name: str, url: str) -> Any:
    """Return contender ``name``'s layer on ``url``, with room for a 1,000-message burst."""
    if name == DJREDIS:
        from djredis.channels import RedisChannelLayer

        return RedisChannelLayer(hosts=[url], capacity=5000, expiry=60)
    if name == CORE:
        from channels_redis.core import RedisChannelLayer as CoreLayer

        return CoreLayer(hosts=[peer_host(url)], capacity=5000, expiry=60)
    from channels_redis.pubsub import RedisPubSubChannelLayer

    return RedisPubSubChannelLayer(hosts=[peer_host(url)])


def peer_host(url: str) -> dict[str, Any]:
    """Return channels_redis's host entry for ``url``, with the workaround for its issue
    #422: redis-py 8's 5 s socket timeout breaks its idle blocking reads and its pub/sub
    reader, so it gets no socket timeout (without this, runs hang)."""
    return {"address": url, "socket_timeout": None}


# -- the scenarios (each returns its figure for one round) --------------------------------------


async def take(layer: Any, channel: str) -> Any:
    """Receive the next message on ``channel`` that is not a warm-up copy."""
    while True:
        message = await layer.receive(channel)
        if message["type"] != "warm":
            return message


async def burst(layer: Any, count: int) -> float:
    start = time.perf_counter()
    for number in range(count):
        await layer.send("burst", {"type": "burst", "n": number})
    for number in range(count):
        if (await take(layer, "burst"))["n"] != number:
            raise RuntimeError("burst: out of order")
    return count / (time.perf_counter() - start)


async def round_trip(layer: Any, pairs: int) -> float:
    start = time.perf_counter()
    for number in range(pairs):
        await layer.send("ping", {"type": "ping", "n": number})
        if (await take(layer, "ping"))["n"] != number:
            raise RuntimeError("round trip: wrong message")
    return (time.perf_counter() - start) / pairs * 1e6


async def fanout(layer: Any, members: list[str], times: int) -> float:
    start = time.perf_counter()
    for number in range(times):
        await layer.group_send("fan", {"type": "fan", "n": number})
        got = await asyncio.gather(*(layer.receive(member) for member in members))
        if any(message["n"] != number for message in got):
            raise RuntimeError("fan-out: wrong message")
    return times * len(members) / (time.perf_counter() - start)


async def fanout_bound(layer: Any, members: list[str], times: int) -> float:
    """``fanout`` with the Redis part taken out: copies put into djredis's mailboxes."""
    loop = asyncio.get_running_loop()
    reader = next(r for key, r in layer._readers[loop].items() if key.endswith("!"))
    start = time.perf_counter()
    for number in range(times):
        message = {"type": "fan", "n": number}
        deadline = loop.time() + layer.expiry
        for index, member in enumerate(members):
            reader.mailbox(member).put(deadline, message if index == 0 else dict(message))
        got = await asyncio.gather(*(layer.receive(member) for member in members))
        if any(message["n"] != number for message in got):
            raise RuntimeError("fan-out bound: wrong message")
    return times * len(members) / (time.perf_counter() - start)


async def _subscribe(layer: Any, channel: str) -> None:
    """Make sure ``layer`` listens on ``channel`` (pub/sub drops messages sent before)."""
    waiting = asyncio.ensure_future(layer.receive(channel))
    for _ in range(200):
        await asyncio.sleep(0.01)
        await layer.send(channel, {"type": "warm", "n": -1})
        if waiting.done():
            break
    await waiting  # later warm-up copies are skipped by take(); never cancel a receive:
    # the pub/sub layer unsubscribes a channel whose receive is cancelled


async def prepare(name: str, layer: Any) -> list[str]:
    """Subscribe and warm up; return the fan-out group's members."""
    print(f"  preparing {name}", file=sys.stderr)
    await layer.flush()
    for channel in ("burst", "ping"):
        await _subscribe(layer, channel)
    members = [await layer.new_channel() for _ in range(GROUP_SIZE)]
    for member in members:
        await layer.group_add("fan", member)
    await fanout(layer, members, 2)
    await burst(layer, 50)
    await round_trip(layer, 20)
    return members


async def commands_per_pair(name: str, layer: Any, url: str, db: int, pairs: int = 50) -> str:
    """Return the Redis commands one send + receive pair sends, counted with MONITOR."""
    import redis

    client = redis.Redis.from_url(url)
    sent: dict[str, int] = {}

    def watch(stop: Any) -> None:
        with client.monitor() as monitor:
            ready.set()
            while True:
                command = monitor.next_command()
                if command["command"] == "ECHO benchmark-end":
                    return
                if command.get("client_type") == "lua" or int(command.get("db", db)) != db:
                    continue
                word = command["command"].split()[0].upper()
                if word not in ("HELLO", "CLIENT", "PING"):
                    sent[word] = sent.get(word, 0) + 1

    import threading

    ready = threading.Event()
    watcher = threading.Thread(target=watch, args=(None,))
    watcher.start()
    ready.wait()
    await asyncio.sleep(0.2)
    await round_trip(layer, pairs)
    await asyncio.sleep(0.2)
    redis.Redis.from_url(url).echo("benchmark-end")
    watcher.join()
    client.close()
    detail = " + ".join(f"{n / pairs:.2g} {word}" for word, n in sorted(sent.items()))
    return f"{sum(sent.values()) / pairs:.2g} ({detail})"


async def measure(server: RedisServer, config: Config) -> tuple[Results, dict[str, str]]:
    names = list(LAYERS)
    urls = {name: server.url(db) for db, name in enumerate(names, start=1)}
    layers = {name: make_layer(name, urls[name]) for name in names}
    members = {}
    for name in list(names):
        for _attempt in (1, 2):
            try:
                members[name] = await asyncio.wait_for(prepare(name, layers[name]), 60)
                break
            except asyncio.TimeoutError:
                # channels_redis's pub/sub layer sometimes never delivers to a fresh
                # subscription; a new layer instance usually does (dropping it is unfair).
                layers[name] = make_layer(name, urls[name])
        else:
            print(f"  {name}: the warm-up hung twice; left out of this run", file=sys.stderr)
            names.remove(name)
    commands = {
        name: await commands_per_pair(name, layers[name], urls[name], db)
        for db, name in enumerate(LAYERS, start=1)
        if name in names
    }
    samples = Results()
    scenarios: dict[str, Callable[[str], Awaitable[float]]] = {
        BURST: lambda n: burst(layers[n], config.burst),
        ROUND_TRIP: lambda n: round_trip(layers[n], config.pairs),
        FANOUT: lambda n: fanout(layers[n], members[n], config.fanouts),
    }
    for number in range(config.rounds):
        for scenario, run in scenarios.items():
            shift = number % len(names)
            for name in names[shift:] + names[:shift]:
                try:
                    samples.add(scenario, name, await asyncio.wait_for(run(name), 120))
                except asyncio.TimeoutError:
                    print(f"  {scenario} {name}: no result in 120 s", file=sys.stderr)
        if DJREDIS in names:
            bound = fanout_bound(layers[DJREDIS], members[DJREDIS], config.fanouts)
            samples.add(FANOUT, BOUND, await asyncio.wait_for(bound, 120))
        print(f"  round {number + 1}/{config.rounds} done", file=sys.stderr)
    for layer in layers.values():
        await layer.flush()
    return samples, commands


# -- reporting ------------------------------------------------------------------------------

HEADERS = ("scenario", "contender", "median", "range over rounds", "djredis is")
UNITS = {BURST: "msg/s", ROUND_TRIP: "µs/pair", FANOUT: "deliveries/s"}


def rows(samples: Results) -> list[list[str]]:
    result = []
    for scenario, unit in UNITS.items():
        mine = samples.median(scenario, DJREDIS)
        for name in (*LAYERS, BOUND):
            if not samples.has(scenario, name):
                continue  # left out of this run (its warm-up hung), or no bound measured
            value = samples.median(scenario, name)
            low, high = samples.spread(scenario, name)
            ratio = value / mine if scenario == ROUND_TRIP else mine / value
            if name == DJREDIS:
                compared = "-"
            elif name == BOUND:
                compared = _bound_note(samples, value)
            else:
                compared = f"{ratio:.1f}x faster"
            result.append(
                [scenario, name, f"{value:,.0f} {unit}", f"{low:,.0f}-{high:,.0f}", compared]
            )
    return result


def _bound_note(samples: Results, bound: float) -> str:
    if not samples.has(FANOUT, PUBSUB):
        return "-"
    return f"(bound: {bound / samples.median(FANOUT, PUBSUB):.1f}x pubsub)"


def target_rows(samples: Results, commands: dict[str, str], chat: Any) -> list[list[str]]:
    def met(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    def ratio(scenario: str, peer: str) -> float:
        if not samples.has(scenario, peer):
            return float("nan")  # the peer was left out of this run: NOT MET, shown as nan
        return samples.median(scenario, DJREDIS) / samples.median(scenario, peer)

    burst_ratio = ratio(BURST, CORE)
    burst_rate = samples.median(BURST, DJREDIS)
    pair_us = samples.median(ROUND_TRIP, DJREDIS)
    pair_commands = float(commands[DJREDIS].split()[0])
    fan_ratio = ratio(FANOUT, PUBSUB)
    result = [
        ["burst vs channels_redis core", f"{burst_ratio:.1f}x", "≥ 10x", met(burst_ratio >= 10)],
        ["burst, djredis", f"{burst_rate:,.0f} msg/s", "≥ 8,000", met(burst_rate >= 8000)],
        ["send+receive, djredis", f"{pair_us:.0f} µs", "≤ 250 µs", met(pair_us <= 250)],
        [
            "send+receive round trips, djredis",
            f"{pair_commands:g}",
            "≤ 2",
            met(pair_commands <= 2),
        ],
        ["fan-out vs channels_redis pubsub", f"{fan_ratio:.1f}x", "≥ 2x", met(fan_ratio >= 2)],
    ]
    if chat is not None:
        result += chat.target_rows()
    return result


def parse_args(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, help="micro-benchmark rounds (default 9)")
    parser.add_argument("--chat-rounds", type=int, help="ASGI chat rounds (default 3; 0 skips)")
    parser.add_argument("--clients", type=int, default=20, help="WebSocket clients in the room")
    parser.add_argument("--messages", type=int, default=20, help="messages each client sends")
    parser.add_argument("--quick", action="store_true", help="a short run; leaves docs/ alone")
    parser.add_argument("--no-docs", action="store_true", help="only print the results")
    args = parser.parse_args(argv)
    return Config(
        rounds=args.rounds or (2 if args.quick else 9),
        burst=200 if args.quick else 1000,
        pairs=100 if args.quick else 500,
        fanouts=5 if args.quick else 20,
        chat_rounds=args.chat_rounds if args.chat_rounds is not None else (1 if args.quick else 3),
        chat_clients=args.clients,
        chat_messages=args.messages,
        write_docs=not (args.quick or args.no_docs),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Start a redis-server, benchmark the three layers, print and document the results."""
    from . import _chat_bench

    config = parse_args(argv)
    server = RedisServer().start()
    try:
        version = str(server.client().info("server")["redis_version"])
        _chat_bench.configure_client_side()
        samples, commands = asyncio.run(measure(server, config))
        chat = _chat_bench.run(server, config) if config.chat_rounds else None
    finally:
        server.stop()
    print(_report.text_table(HEADERS, rows(samples), "llrrr"))
    print("\nRedis commands per send+receive:")
    for name, text in commands.items():
        print(f"  {name}: {text}")
    if chat is not None:
        print()
        print(_report.text_table(chat.HEADERS, chat.rows(), "lrrrr"))
    print()
    print(_report.text_table(TARGET_HEADERS, target_rows(samples, commands, chat), "llll"))
    if config.write_docs:
        from ._chat_bench import markdown_section

        page = _report.write_section(
            SECTION, markdown_section(config, samples, commands, chat, version)
        )
        print(f"\nWrote {page.relative_to(_report.PROJECT_ROOT)}")


TARGET_HEADERS = ("target", "measured", "wanted", "")


if __name__ == "__main__":
    main()
