"""Route commands to the nodes of a Redis Cluster by hash slot, for both runners.

The slot map comes from ``CLUSTER SLOTS``, asked of a seed node (LOCATION) or of any node
met since, and is shared by the sync and async paths of the process. A command goes to the
primary serving its key's slot, over the same connections as any other server: redis-py's
pools (sync) and the loop's multiplexed connection per node (async).

Multi-key commands (``MGET``, ``MSET``, ``DEL``, ``UNLINK``, ``EXISTS``, ``TOUCH``) and
scripts declared per key (``Eval.per_key``) are split by slot; the parts are grouped by
node and sent to every node before any reply is read (one round trip in parallel, not one
per node), and the replies are put back in the caller's order.

Redirections and failures are handled here, not in the view:

- ``MOVED``: the slot is updated and the command resent to its new owner; a ``MOVED`` to a
  primary the map does not know (a failover happened) reloads the whole map;
- ``ASK`` (a slot being migrated): the command is resent once to the target, after
  ``ASKING``; ``TRYAGAIN`` (a multi-key command during migration) waits 50 ms and retries;
- a connection error reloads the map from another node and retries once, on the new owner
  when a replica has been promoted, but only when ``may_resend`` allows it: the command
  surely did not reach the node (the connect failed), or it only reads. A write whose reply
  was lost may have been applied, so its error surfaces instead. A timeout is not retried
  (it already took ``socket_timeout``). What remains after ``MAX_ROUNDS`` rounds is a
  ``ConnectionError`` (``TopologyError``), which ``IGNORE_EXCEPTIONS`` turns into a miss.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from typing import Any

from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.client import Redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisClusterException, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djredis._config.server import ClusterSettings, ServerConfig
from djredis._core.commands import Batch, Call, Command, Eval, Primaries
from djredis._core.errors import CONNECTION_ERRORS, may_resend
from djredis._io.bridge import (
    disconnect_idle,
    get_shared,
    redis_py_kwargs,
    resent_errors,
    retry_policy,
)
from djredis._io.loops import LoopState
from djredis._io.pool import execute_on
from djredis._io.wire import execute_async
from djredis._routing.base import (
    ATTEMPT_ERRORS,
    Topology,
    TopologyError,
    close_multiplexed,
    drive_async,
    drive_sync,
)
from djredis._routing.cluster_plan import (
    KEYLESS,
    PENDING,
    SPLIT,
    Node,
    Part,
    accepted_kwargs,
    all_replies,
    command_name,
    error_code,
    first_reply,
    redirect_target,
    seen_end,
    slot_of,
    split_eval,
    split_keys,
    watch_one,
)
from djredis._routing.cluster_send import send_round_async, send_round_sync
from djredis._routing.cluster_slots import SlotMap

__all__ = ["MAX_ROUNDS", "ClusterGroup", "slot_of"]

# Rounds of redirections/retries one command may take before it fails.
MAX_ROUNDS = 5
TRYAGAIN_DELAY = 0.05
CLUSTERDOWN_DELAY = 0.1


# What the retry loop asks its runner to do.
_REFRESH = "refresh"
_Groups = dict[Node, list[Part]]
_Step = Any  # _REFRESH, a delay in seconds (float), or _Groups to send


class ClusterGroup(Topology):
    """A Redis Cluster: commands go to the primary of their key's hash slot."""

    def __init__(self, settings: ClusterSettings) -> None:
        super().__init__()
        self._settings = settings
        # The slot map tells the observers (the near-cache) when the primaries change.
        self._map = SlotMap(settings.seeds, self._servers_changed)

    def after_fork(self) -> None:
        super().after_fork()
        self._map.after_fork()

    def _refresh_sync(self, force: bool = False) -> None:
        if self._map.want_refresh() or force or self._map.slots is None:
            drive_sync(self._map.refresh())

    async def _refresh_async(self, state: LoopState, force: bool = False) -> None:
        if self._map.want_refresh() or force or self._map.slots is None:
            await drive_async(self._map.refresh(), state)

    # -- planning: one command -> parts routed on their own, and how to merge them -------------

    def _plan(self, command: Call | Batch | Eval) -> tuple[list[Part], Callable[[list[Any]], Any]]:
        parts, merge = self._split(command)
        for part in parts:
            part.write = command.write
        return parts, merge

    def _split(self, command: Call | Batch | Eval) -> tuple[list[Part], Callable[[list[Any]], Any]]:
        if isinstance(command, Call):
            args = command.args
            if command.node is not None:
                return [Part(args, node=command.node)], first_reply
            name = command_name(args[0])
            split = SPLIT.get(name)
            if split is not None and len(args) > 1 + split[0]:
                return split_keys(args, split)
            keyless = len(args) < 2 or name in KEYLESS
            return [Part(args, slot=None if keyless else slot_of(args[1]))], first_reply
        if isinstance(command, Eval):
            return split_eval(command)
        if command.transaction:
            slot = slot_of(command.calls[0][1]) if command.calls[0][1:] else None
            return [Part(("EXEC",), slot=slot, transaction=command.calls)], first_reply
        parts = [
            Part(args, slot=slot_of(args[1]) if len(args) > 1 else None) for args in command.calls
        ]
        return parts, all_replies

    # -- the retry loop, written once for both runners ------------------------------------------

    def _drive(self, parts: list[Part]) -> Generator[_Step, Any, None]:
        """Fill in every part's reply, following redirections and failovers."""
        pending = parts
        for _ in range(MAX_ROUNDS):
            if self._map.slots is None:
                yield _REFRESH
            groups: _Groups = {}
            for part in pending:
                node = part.ask or part.node
                if node is None:
                    node = self._map.owner(part.slot) if part.slot is not None else None
                    if node is None and part.slot is None and self._map.primaries:
                        node = self._map.primaries[0]
                part.sent_to = node
                if node is None:
                    part.reply = TopologyError(f"no Redis Cluster node serves slot {part.slot}")
                    continue
                groups.setdefault(node, []).append(part)
            failed: dict[Node, Exception] = (yield groups) if groups else {}
            pending, refresh, delay = self._settle(pending, failed)
            if not pending:
                return
            if refresh:
                yield _REFRESH
            if delay:
                yield delay
        error = next((p.reply for p in pending if isinstance(p.reply, Exception)), None)
        raise TopologyError(
            f"Redis Cluster command still redirected or refused after {MAX_ROUNDS} rounds"
            + (f": {error}" if error else "")
        )

    def _settle(
        self, parts: list[Part], failed: dict[Node, Exception]
    ) -> tuple[list[Part], bool, float]:
        """Decide which parts to send again; raise what cannot be retried."""
        retry: list[Part] = []
        refresh, delay = False, 0.0
        for part in parts:
            reply = part.reply
            node = part.sent_to
            if node is None:  # no node serves the slot
                retry.append(part)
                refresh, delay = True, max(delay, CLUSTERDOWN_DELAY)
                continue
            if node in failed:
                reply = failed[node]
            if isinstance(reply, CONNECTION_ERRORS):
                self._map.failed(node)
                part.conn_failures += 1
                # A timeout already cost socket_timeout; a node-bound command (SCAN)
                # cannot move; a second refusal means no replica has taken over yet; a
                # write that may have reached the node must not be applied twice.
                if (
                    isinstance(reply, RedisTimeoutError)
                    or part.node is not None
                    or part.conn_failures > 1
                    or not may_resend(reply, write=part.write)
                ):
                    raise reply
                part.ask = None
                retry.append(part)
                refresh = True
                continue
            if not isinstance(reply, ResponseError):
                continue
            redirect = redirect_target(reply)
            if redirect is not None:
                kind, slot, host, port = redirect
                target = self._map.node(host, port)
                if kind == "ASK" and part.transaction:  # migrating: wait for the MOVED
                    delay = max(delay, TRYAGAIN_DELAY)
                elif kind == "ASK":
                    part.ask = target
                else:
                    part.ask = None
                    # A primary the map does not know (a promoted replica): reload it.
                    refresh = self._map.moved(slot, target) or refresh
                retry.append(part)
                continue
            code = error_code(reply)
            if code == "TRYAGAIN":
                retry.append(part)
                delay = max(delay, TRYAGAIN_DELAY)
            elif code in ("CLUSTERDOWN", "MASTERDOWN"):
                retry.append(part)
                refresh, delay = True, max(delay, CLUSTERDOWN_DELAY)
            elif isinstance(reply, NoScriptError) or code == "NOSCRIPT":
                if part.script is None:
                    continue
                part.args = ("EVAL", part.script.source, *part.args[2:])
                part.script = None
                retry.append(part)
        for part in retry:
            part.reply = PENDING
        return retry, refresh, delay

    def _finish(self, parts: list[Part], merge: Callable[[list[Any]], Any]) -> Any:
        for part in parts:
            if isinstance(part.reply, ResponseError):
                raise part.reply
        return merge([part.reply for part in parts])

    # -- sync -------------------------------------------------------------------------------------

    def _fast_target(self, command: Command) -> Node | None:
        """Return the node for a command on one known slot (the common case), else None."""
        slots = self._map.slots
        if slots is None:
            return None
        if type(command) is Call:
            args = command.args
            if command.node is not None or len(args) < 2 or args[0] in KEYLESS:
                return None
            split = SPLIT.get(args[0])
            if split is not None and len(args) != 1 + split[0]:
                return None
            return slots[slot_of(args[1])]
        if type(command) is Eval and command.keys and not command.per_key:
            return slots[slot_of(command.keys[0])]
        return None

    def _fast_failed(self, node: Node, exc: Exception, write: bool) -> None:
        """Re-raise ``exc`` unless the retry loop can do something about it."""
        if isinstance(exc, ResponseError):
            if redirect_target(exc) is None and error_code(exc) not in _RETRIED:
                raise exc
            return
        self._map.failed(node)
        if isinstance(exc, RedisTimeoutError) or not may_resend(exc, write=write):
            raise exc

    def execute(self, command: Command) -> Any:
        if self._map.suspect:
            self._refresh_sync()
        if type(command) is Primaries:
            if self._map.slots is None:
                self._refresh_sync(force=True)
            return self._map.primaries
        # The common case, one slot on a known node, goes straight to that node's client.
        node = self._fast_target(command)
        if node is not None:
            seen = watch_one(node, command)
            try:
                reply = execute_on(node.config, command)
            except ATTEMPT_ERRORS as exc:
                seen_end(seen, exc)
                self._fast_failed(node, exc, command.write)
            except BaseException as exc:  # interrupted: the span ends all the same
                seen_end(seen, exc)
                raise
            else:
                seen_end(seen, None)
                return reply
        parts, merge = self._plan(command)
        steps = self._drive(parts)
        try:
            step = next(steps)
            while True:
                if step is _REFRESH:
                    self._refresh_sync()
                    step = steps.send(None)
                elif isinstance(step, float):
                    time.sleep(step)
                    step = steps.send(None)
                else:
                    step = steps.send(self._send_sync(step))
        except StopIteration:
            return self._finish(parts, merge)

    def _send_sync(self, groups: _Groups) -> dict[Node, Exception]:
        return send_round_sync(groups)

    # -- async ------------------------------------------------------------------------------------

    async def aexecute(self, command: Command, state: LoopState) -> Any:
        if self._map.suspect:
            await self._refresh_async(state)
        if type(command) is Primaries:
            if self._map.slots is None:
                await self._refresh_async(state, force=True)
            return self._map.primaries
        node = self._fast_target(command)
        if node is not None:
            seen = watch_one(node, command)
            try:
                reply = await execute_async(state.connection(node.config), command)
            except ATTEMPT_ERRORS as exc:
                seen_end(seen, exc)
                self._fast_failed(node, exc, command.write)
            except BaseException as exc:  # cancelled: the span ends all the same
                seen_end(seen, exc)
                raise
            else:
                seen_end(seen, None)
                return reply
        parts, merge = self._plan(command)
        steps = self._drive(parts)
        try:
            step = next(steps)
            while True:
                if step is _REFRESH:
                    await self._refresh_async(state)
                    step = steps.send(None)
                elif isinstance(step, float):
                    await asyncio.sleep(step)
                    step = steps.send(None)
                else:
                    step = steps.send(await self._send_async(step, state))
        except StopIteration:
            return self._finish(parts, merge)

    async def aprimary_for(
        self, key: str, state: LoopState, *, fresh: bool = False
    ) -> ServerConfig:
        await self._refresh_async(state, force=fresh)
        slots = self._map.slots
        node = None if slots is None else slots[slot_of(key)]
        if node is None:
            raise TopologyError(f"no Cluster node serves the slot of {key!r}")
        return node.config

    async def _send_async(self, groups: _Groups, state: LoopState) -> dict[Node, Exception]:
        return await send_round_async(groups, state)

    # -- clients for user code, and housekeeping ------------------------------------------------

    def _cluster_kwargs(self, cls: type[Any]) -> dict[str, Any]:
        kwargs = redis_py_kwargs(self._map.template)
        for name in ("db", "retry", "connection_class", "pool_class"):
            kwargs.pop(name, None)
        kwargs.update(dict(self._settings.client_kwargs))
        kwargs["retry"] = retry_policy(
            self._map.template, asyncio=issubclass(cls, AsyncRedisCluster)
        )
        kwargs.setdefault("retry_on_error", list(resent_errors(self._map.template)))
        kwargs["startup_nodes"] = [ClusterNode(*seed.address) for seed in self._settings.seeds]  # type: ignore[no-untyped-call]
        return accepted_kwargs(cls, kwargs)

    def client(self, write: bool = True) -> RedisCluster:
        """Return redis-py's ``RedisCluster`` for these seeds (user code, sync locks).

        Building it connects to the seeds (redis-py loads the slot map at once); when none
        answers, that is a ``TopologyError`` (a ConnectionError).
        """
        cls = self._settings.client_class

        def build() -> RedisCluster:
            try:
                cluster: RedisCluster = cls(**self._cluster_kwargs(cls))
            except RedisClusterException as exc:
                raise TopologyError(f"Redis Cluster unreachable: {exc}") from exc
            return cluster

        found: RedisCluster = get_shared(("cluster", self._settings), build)
        return found

    def lock_client(self, key: str) -> Redis | RedisCluster:
        """Return the RedisCluster client; a seed's plain client while none can be built.

        redis-py's RedisCluster connects when it is created, so with every node down a lock
        gets a client whose commands fail like any other (and IGNORE_EXCEPTIONS applies).
        """
        try:
            return self.client(True)
        except (RedisClusterException, RedisConnectionError):  # TopologyError included
            return self._map.seeds[0].client

    def async_client(self, write: bool, state: LoopState) -> AsyncRedisCluster:
        """Return this loop's ``redis.asyncio`` ``RedisCluster`` (async locks, user code)."""

        def build() -> AsyncRedisCluster:
            kwargs = self._cluster_kwargs(AsyncRedisCluster)
            kwargs["startup_nodes"] = [
                AsyncClusterNode(*seed.address) for seed in self._settings.seeds
            ]
            return AsyncRedisCluster(**kwargs)

        return state.shared(("cluster", self._settings), build)

    def read_servers(self, refresh: bool = False) -> tuple[ServerConfig, ...]:
        self._refresh_sync(force=refresh)
        return tuple(node.config for node in self._map.primaries)

    def _known(self) -> list[ServerConfig]:
        return [node.config for node in self._map.nodes.values()]

    def disconnect(self) -> None:
        disconnect_idle(self._known())

    def close_loop(self, state: LoopState) -> None:
        close_multiplexed(state, self._known())


# Errors that send a fast-path command through the retry loop.
_RETRIED = frozenset({"TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN"})
