"""Route commands to a primary and its replicas: listed in LOCATION, or named by Sentinel.

``connect(settings)`` returns the ``Topology`` for any parsed settings; Redis Cluster lives
in ``cluster.py``.

Writes, and anything that must read its own write, go to the primary; reads (commands the
operation marks ``write=False``) go to a random healthy replica when replica reads are on.
A replica that fails (connection error, timeout, ``LOADING``, ``MASTERDOWN``) is skipped for
``REPLICA_RETRY_AFTER`` seconds and the read is answered by the primary instead, so a
replica going away costs one failed attempt, not an error.

With Sentinel, the primary's address comes from the first Sentinel that answers
(``SENTINEL MASTER <service>``, rejected while that Sentinel sees it down). When a command
to the primary fails with a connection error, or with ``READONLY`` (the primary was
demoted), djredis forgets the address, asks the Sentinels again, and retries once if they
now name another server and the command may be sent again (``may_resend``: it surely did
not reach the old primary, or it only reads; ``READONLY`` means the server refused it);
otherwise the error reaches the component's error policy. So writes resume as soon as the
Sentinels have promoted a replica, no write is applied twice, and no command waits longer
than the connection timeouts for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable
from typing import Any, NamedTuple

from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.client import Redis
from redis.exceptions import ResponseError
from redis.sentinel import MasterNotFoundError, Sentinel

from djredis._config.server import (
    ConnectionSettings,
    SentinelSettings,
    ServerConfig,
)
from djredis._core.commands import Batch, Call, Command, Eval, Primaries
from djredis._core.errors import CONNECTION_ERRORS, may_resend
from djredis._io.bridge import (
    disconnect_idle,
    get_client,
    get_shared,
    redis_py_kwargs,
    resent_errors,
    retry_policy,
)
from djredis._io.loops import LoopState, loop_state
from djredis._routing.base import (
    ATTEMPT_ERRORS,
    Route,
    Topology,
    TopologyError,
    close_multiplexed,
    drive_async,
    drive_sync,
    send_async,
    send_sync,
)
from djredis._routing.replicas import REPLICA_RETRY_AFTER, ReplicaHealth, primary_demoted
from djredis._routing.sentinel_watch import SwitchWatch

__all__ = ["REPLICA_RETRY_AFTER", "SentinelGroup", "ServerGroup"]

logger = logging.getLogger("djredis.topology")

# How often the Sentinels are asked again for the list of healthy replicas.
SENTINEL_REPLICAS_TTL = 10.0


class ServerGroup(Topology):
    """One server, or a primary and the read replicas listed in LOCATION."""

    def __init__(self, settings: ConnectionSettings) -> None:
        if not isinstance(settings, ConnectionSettings):
            raise TypeError("ServerGroup takes ConnectionSettings; use connect(settings)")
        super().__init__()
        self.primary = settings.primary
        self.replicas = settings.replicas
        self._read_from = settings.replicas if settings.read_from_replicas else ()
        self._health = ReplicaHealth()

    def execute(self, command: Command) -> Any:
        if type(command) is Primaries:
            return (None,)
        if not self._read_from:
            return send_sync(self.primary, command)
        return drive_sync(self._route(command))

    def aexecute(self, command: Command) -> Awaitable[Any]:
        # The send's coroutine itself, not one awaiting it: a frame less per request.
        if type(command) is Primaries:
            return _done((None,))
        if not self._read_from:
            return send_async(loop_state(), self.primary, command)
        return drive_async(self._route(command), loop_state())

    async def aprimary_for(
        self, key: str, state: LoopState, *, fresh: bool = False
    ) -> ServerConfig:
        return self.primary

    def _route(self, command: Call | Batch | Eval) -> Route[Any]:
        """Reads try a healthy replica first; everything else, and what a replica could not
        answer, goes to the primary."""
        if not command.write:
            answered, reply = yield from self._health.read(self._read_from, command)
            if answered:
                return reply
        return (yield self.primary, command)

    def _target(self, write: bool) -> ServerConfig:
        if write or not self._read_from:
            return self.primary
        return self._health.pick(self._read_from) or self.primary

    def client(self, write: bool = True) -> Redis:
        return get_client(self._target(write))

    def async_client(self, write: bool, state: LoopState) -> AsyncRedis:
        return state.client(self._target(write))

    def read_servers(self, refresh: bool = False) -> tuple[ServerConfig, ...]:
        return (self.primary, *self._read_from)

    def all_configs(self) -> tuple[ServerConfig, ...]:
        """Return the primary followed by every replica."""
        return (self.primary, *self.replicas)

    def disconnect(self) -> None:
        disconnect_idle(self.all_configs())

    def close_loop(self, state: LoopState) -> None:
        close_multiplexed(state, self.all_configs())


class _Found(NamedTuple):
    """What a Sentinel named: the primary, the healthy replicas, its configuration epoch;
    ``newest``: False for an older configuration taken because no Sentinel knew better."""

    primary: ServerConfig
    replicas: tuple[ServerConfig, ...]
    epoch: int
    newest: bool = True


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _fields(reply: Any) -> dict[str, str]:
    """Turn a Sentinel's flat [name, value, ...] reply (or a RESP3 map) into a dict."""
    items = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
    return {_text(k): _text(v) for k, v in items}


def _where(config: ServerConfig) -> str:
    host, port = config.address
    return f"{host}:{port}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SentinelGroup(Topology):
    """The primary and replicas of a Sentinel service, found by asking the Sentinels."""

    def __init__(self, settings: SentinelSettings) -> None:
        super().__init__()
        self._settings = settings
        self._service = settings.service_name
        self._read_replicas = settings.read_from_replicas
        # The Sentinel that answered last is asked first next time.
        self._sentinels = list(settings.sentinels)
        self._primary: ServerConfig | None = None
        self._replicas: tuple[ServerConfig, ...] = ()
        # The read servers last in use, and the newest Sentinel configuration epoch seen:
        # an answer from a Sentinel that has not yet heard of a failover is not followed.
        self._announced: tuple[ServerConfig, ...] = ()
        self._epoch = -1
        self._checked = 0.0
        self._nodes: dict[tuple[str, int], ServerConfig] = {}
        self._health = ReplicaHealth()
        self._lock = threading.Lock()
        self._telling = threading.Lock()  # one _servers_changed at a time
        self._watch = SwitchWatch(settings.sentinels, self._service, self._recheck)

    def after_fork(self) -> None:
        super().after_fork()
        self._lock = threading.Lock()
        self._telling = threading.Lock()
        self._watch.after_fork()

    # -- discovery, written once for both runners --------------------------------------------

    def _recheck(self, sentinel: ServerConfig) -> None:
        """Ask ``sentinel`` (it announced a failover, or its announcements had a gap) and
        switch to the primary it names, unless its configuration is older than one seen."""
        try:
            found = drive_sync(self._discover((sentinel,), newest_only=True))
        except MasterNotFoundError as exc:
            logger.debug("djredis: Sentinel recheck: %s", exc)
            return
        self._found(found)

    def _discover(
        self, sentinels: tuple[ServerConfig, ...] | None = None, *, newest_only: bool = False
    ) -> Route[_Found]:
        """Ask the Sentinels, the last one that answered first, for the primary (and the
        healthy replicas); a step of the route like any other attempt.

        A Sentinel whose configuration epoch is older than the newest seen has not heard of
        a failover yet: the next one is asked, and its answer is taken only when no other
        Sentinel gives a newer one (``newest_only``: not even then).

        Mid-failover, ``SENTINEL MASTER`` still shows the old primary until the failover
        ends (``+switch-master``, when the other replicas are reconfigured), but the Sentinel
        leading it names the promoted replica to ``GET-MASTER-ADDR-BY-NAME`` (what every
        client asks) from the moment it saw the promotion, and writes land there from then
        on: that Sentinel is asked that too, and the promoted replica followed at once."""
        problems = []
        older: _Found | None = None
        for sentinel in sentinels or tuple(self._sentinels):
            try:
                state = _fields((yield from self._ask(sentinel, "MASTER")))
                named = (
                    (yield from self._ask(sentinel, "GET-MASTER-ADDR-BY-NAME"))
                    if "failover_in_progress" in state.get("flags", "")
                    else None
                )
                replicas = (
                    (yield from self._ask(sentinel, "REPLICAS")) if self._read_replicas else []
                )
            except ATTEMPT_ERRORS as exc:
                problems.append(f"{_where(sentinel)}: {type(exc).__name__}: {exc}")
                continue
            flags = set(state.get("flags", "").split(","))
            primary = self._node(state["ip"], int(state["port"]))
            promoted = self._node(_text(named[0]), int(named[1])) if named else primary
            # The old primary's down flags no longer matter once a replica was promoted.
            if "master" not in flags or (flags & {"s_down", "o_down"} and promoted == primary):
                problems.append(
                    f"{_where(sentinel)} sees {state.get('ip')}:{state.get('port')} "
                    f"as {state.get('flags')}"
                )
                continue
            epoch = _int(state.get("config-epoch"))
            healthy = self._healthy(replicas, promoted, failing_over=named is not None)
            found = _Found(promoted, healthy, epoch)
            if epoch < self._epoch:
                problems.append(f"{_where(sentinel)} has an older configuration (epoch {epoch})")
                older = older or found._replace(newest=False)
                continue
            self._prefer(sentinel)
            return found
        if older is not None and not newest_only:
            return older  # no Sentinel knows better: its answer beats none
        raise MasterNotFoundError(
            f"no Sentinel names a usable primary for {self._service!r} "
            f"({'; '.join(problems) or 'no Sentinel configured'})"
        )

    def _ask(self, sentinel: ServerConfig, question: str) -> Route[Any]:
        """Ask ``sentinel`` ``SENTINEL <question> <service>``."""
        return (yield sentinel, Call(("SENTINEL", question, self._service), write=False))

    def _healthy(
        self, replicas: Any, primary: ServerConfig, *, failing_over: bool
    ) -> tuple[ServerConfig, ...]:
        """Return the replicas a Sentinel lists that may answer reads: linked to a primary,
        not down, not promoted (the replica being promoted is listed until the failover
        ends). During a failover, only those already replicating ``primary``: the others
        still follow the old primary, which writes no longer reach (the leading Sentinel
        moves them with the very address it names, so they compare equal)."""
        healthy = []
        host, port = primary.address
        for replica in map(_fields, replicas):
            flags = set(replica.get("flags", "").split(","))
            if (
                replica.get("master-link-status") != "ok"
                or replica.get("role-reported", "slave") != "slave"
                or flags & {"s_down", "o_down", "disconnected", "promoted"}
            ):
                continue
            if failing_over and (replica.get("master-host"), replica.get("master-port")) != (
                host,
                str(port),
            ):
                continue
            node = self._node(replica["ip"], int(replica["port"]))
            if node != primary:
                healthy.append(node)
        return tuple(healthy)

    def _prefer(self, sentinel: ServerConfig) -> None:
        with self._lock:
            if self._sentinels[0] != sentinel:
                self._sentinels.remove(sentinel)
                self._sentinels.insert(0, sentinel)

    def _node(self, host: str, port: int) -> ServerConfig:
        node = self._nodes.get((host, port))
        if node is None:
            node = self._nodes[(host, port)] = self._settings.node.at(host, port)
        return node

    def _found(self, found: _Found) -> ServerConfig:
        """Route to what a Sentinel named from now on; tell the observers (the near-cache)
        when the read servers changed, after the switch (see ``Topology.watch``).

        Threads discover concurrently (a Sentinel's announcement, the near-cache's refresh,
        a failed command): an answer older than one another thread took meanwhile is not
        followed, and the observers are told the servers in use when they are told, one
        thread at a time, so the last thing they hear is what reads go to."""
        primary, replicas, epoch, newest = found
        with self._lock:
            if newest and epoch < self._epoch:
                return self._primary or (self._announced or (primary,))[0]
            previous = self._announced[0] if self._announced else None
            self._primary, self._replicas, self._checked = primary, replicas, time.monotonic()
            self._epoch = max(self._epoch, epoch)
            servers = (primary, *replicas) if self._read_replicas else (primary,)
            changed = bool(self._announced) and servers != self._announced
            self._announced = servers
        if previous is not None and primary != previous:
            logger.warning(
                "djredis: Sentinel service %r has a new primary: %s (was %s)",
                self._service,
                primary.describe(),
                previous.describe(),
            )
        if changed:
            with self._telling:
                self._servers_changed(self._announced)
        return primary

    def _replicas_stale(self) -> bool:
        return self._primary is None or time.monotonic() - self._checked > SENTINEL_REPLICAS_TTL

    # -- routing ----------------------------------------------------------------------------

    def execute(self, command: Command) -> Any:
        if not self._watch.complete:
            self._watch.ensure()
        if type(command) is Primaries:
            return (None,)
        return drive_sync(self._route(command))

    def aexecute(self, command: Command) -> Awaitable[Any]:
        if not self._watch.complete:
            self._watch.ensure()
        if type(command) is Primaries:
            return _done((None,))
        return drive_async(self._route(command), loop_state())

    async def aprimary_for(
        self, key: str, state: LoopState, *, fresh: bool = False
    ) -> ServerConfig:
        if not self._watch.complete:
            self._watch.ensure()
        if fresh or self._primary is None:
            return self._found(await drive_async(self._discover(), state))
        return self._primary

    def _route(self, command: Call | Batch | Eval) -> Route[Any]:
        """Ask the Sentinels when the primary (or the replica list) is not known; reads try a
        healthy replica first; a primary that failed is forgotten, and the command goes to
        the one the Sentinels name now, if the resend rule allows it."""
        if not command.write and self._read_replicas:
            if self._replicas_stale():
                try:
                    self._found((yield from self._discover()))
                except CONNECTION_ERRORS:
                    self._checked = time.monotonic()  # keep the replicas known; ask later
            answered, reply = yield from self._health.read(self._replicas, command)
            if answered:
                return reply
        primary = self._primary or self._found((yield from self._discover()))
        try:
            return (yield primary, command)
        except ATTEMPT_ERRORS as exc:
            error = self._primary_failed(primary, exc)
            resend = _may_resend_elsewhere(primary, exc, error, command)
        # Not resent: the primary is forgotten all the same, so the next command asks again.
        if not resend or self._found((yield from self._discover())) == primary:
            raise error
        target = self._primary or primary
        try:
            return (yield target, command)
        except ResponseError as exc:
            raise self._primary_failed(target, exc) from exc

    def _primary_failed(self, primary: ServerConfig, exc: Exception) -> Exception:
        """Forget ``primary`` when ``exc`` says it is gone or demoted; return what to raise."""
        if isinstance(exc, ResponseError) and not isinstance(exc, CONNECTION_ERRORS):
            if not primary_demoted(exc):
                raise exc
            exc = TopologyError(f"{primary.describe()} is no longer the primary: {exc}")
        if self._primary == primary:
            self._primary = None
        return exc

    # -- clients for user code --------------------------------------------------------------

    def _sentinel_args(self) -> tuple[list[tuple[str, int]], dict[str, Any], dict[str, Any]]:
        node = redis_py_kwargs(self._settings.node)
        node.setdefault("retry", retry_policy(self._settings.node))
        node.setdefault("retry_on_error", list(resent_errors(self._settings.node)))
        sentinel = redis_py_kwargs(self._settings.sentinels[0])
        sentinel.setdefault("retry", retry_policy(self._settings.sentinels[0]))
        return [s.address for s in self._settings.sentinels], sentinel, node

    def client(self, write: bool = True) -> Redis:
        """Return redis-py's Sentinel-managed client (it follows failovers itself)."""
        role = "primary" if write or not self._read_replicas else "replica"

        def build() -> _SentinelClients:
            addresses, sentinel_kwargs, node = self._sentinel_args()
            sentinel = Sentinel(addresses, sentinel_kwargs=sentinel_kwargs, **node)  # type: ignore[no-untyped-call, unused-ignore]
            return _SentinelClients(sentinel, self._service, self._settings.node.client_class)

        clients = get_shared(("sentinel", self._settings), build)
        client: Redis = clients.primary if role == "primary" else clients.replica
        return client

    def async_client(self, write: bool, state: LoopState) -> AsyncRedis:
        """Return this loop's ``redis.asyncio`` Sentinel-managed client."""
        role = "primary" if write or not self._read_replicas else "replica"

        def build() -> _SentinelClients:
            addresses, sentinel_kwargs, node = self._sentinel_args()
            node.pop("parser_class", None)  # sync parser classes do not fit asyncio
            node["retry"] = retry_policy(self._settings.node, asyncio=True)
            node.setdefault("retry_on_error", list(resent_errors(self._settings.node)))
            sentinel_kwargs["retry"] = retry_policy(self._settings.sentinels[0], asyncio=True)
            sentinel = AsyncSentinel(addresses, sentinel_kwargs=sentinel_kwargs, **node)  # type: ignore[no-untyped-call, unused-ignore]
            return _SentinelClients(sentinel, self._service, AsyncRedis)

        clients = state.shared(("sentinel", self._settings), build)
        client: AsyncRedis = clients.primary if role == "primary" else clients.replica
        return client

    def read_servers(self, refresh: bool = False) -> tuple[ServerConfig, ...]:
        if not self._watch.complete:
            self._watch.ensure()
        if refresh or self._primary is None or (self._read_replicas and self._replicas_stale()):
            self._found(drive_sync(self._discover()))
        # What reads are routed to now (a command that failed may have forgotten the
        # primary meanwhile: the last one in use is still the one to track).
        return self._announced

    def _known(self) -> tuple[ServerConfig, ...]:
        return (*self._nodes.values(), *self._settings.sentinels)

    def disconnect(self) -> None:
        disconnect_idle(self._known())

    def close_loop(self, state: LoopState) -> None:
        close_multiplexed(state, self._known())


def _may_resend_elsewhere(
    primary: ServerConfig, exc: Exception, error: Exception, command: Call | Batch | Eval
) -> bool:
    """Whether a command the primary failed may go to the primary the Sentinels name next.

    ``READONLY`` (``error`` became a ``TopologyError``): the demoted primary refused it.
    Otherwise ``may_resend`` decides: a write whose reply was lost may have been applied.
    """
    if isinstance(error, TopologyError) and not isinstance(exc, CONNECTION_ERRORS):
        return True
    return may_resend(exc, write=command.write, retry_on_timeout=primary.retry_on_timeout)


class _SentinelClients:
    """redis-py's Sentinel object and the primary/replica clients made from it."""

    def __init__(self, sentinel: Any, service: str, redis_class: type[Any]) -> None:
        self.sentinel = sentinel
        self.primary = sentinel.master_for(service, redis_class=redis_class)
        self.replica = sentinel.slave_for(service, redis_class=redis_class)

    def close(self) -> None:
        for client in (self.primary, self.replica, *self.sentinel.sentinels):
            client.close()

    async def aclose(self) -> None:
        for client in (self.primary, self.replica, *self.sentinel.sentinels):
            await client.aclose(close_connection_pool=True)


async def _done(value: Any) -> Any:
    return value
