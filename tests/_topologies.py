"""Start real Redis topologies for the tests: primary + replica, Sentinel, and Cluster.

Every server is a ``redis-server`` process in its own temp dir, stopped by PID
(``RedisServer``), on ports it has bound itself (``RedisServer.start`` retries on "Address
already in use"; each topology takes ``ports`` to inject the candidates). All of them
require credentials the way a production deployment does: an ACL user
(``USERNAME``/``PASSWORD``) for clients and replication, and a ``requirepass`` on the
Sentinels (``SENTINEL_PASSWORD``), so every topology test also tests authentication.

Each topology object knows how to describe itself to djredis (``location`` and
``options``, as a user would write them in CACHES), how to give a test a raw redis-py
client, and how to sum the command counts of its servers (``commandstats``).

Failure detection is shortened for test speed (the README says what to expect in
production): Sentinel ``down-after-milliseconds`` 500 and ``cluster-node-timeout`` 500,
where production values are 5 to 30 s. The Cluster runs with
``cluster-require-full-coverage no``, so the healthy slots keep serving while one is down.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from ._servers import REDIS_SERVER, RedisServer, candidate_port, free_port, tls_unsupported

USERNAME = "djredis"
PASSWORD = "app-secret"
SENTINEL_PASSWORD = "sentinel-secret"
SERVICE = "mymaster"
# Shortened for test speed; see the module docstring.
DOWN_AFTER_MS = 500
NODE_TIMEOUT_MS = 500

# An ACL user with every permission, for clients and for replication; the default user
# is switched off so nothing can talk to these servers without credentials.
_ACL = (
    "--user",
    USERNAME,
    "on",
    f">{PASSWORD}",
    "~*",
    "&*",
    "+@all",
    "--user",
    "default",
    "off",
    "--masteruser",
    USERNAME,
    "--masterauth",
    PASSWORD,
    # The primary decides when a full sync starts; without this it waits 5 s for more
    # replicas to join the same transfer.
    "--repl-diskless-sync",
    "yes",
    "--repl-diskless-sync-delay",
    "0",
)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            if predicate():
                return
        except (redis.exceptions.RedisError, OSError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}" + (f" ({last!r})" if last else ""))
        time.sleep(0.02)


def free_cluster_port() -> int:
    """Return a port for a cluster seed address where nothing must answer (see ``free_port``).

    Cluster nodes do not use it: they bind their ports and bus ports in ``RedisServer.start``.
    """
    return free_port()


@dataclass(frozen=True)
class Tls:
    """A throw-away certificate authority and a server certificate for 127.0.0.1."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def create(cls, directory: Path) -> Tls:
        """Make a CA and a server certificate in ``directory``; skip when the server has no TLS."""
        reason = tls_unsupported()
        if reason is not None:
            pytest.skip(reason)

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

        openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=djredis test CA", "-keyout", "ca.key", "-out", "ca.crt",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr",
        )  # fmt: skip
        # Python >= 3.13 verifies strictly (VERIFY_X509_STRICT): a leaf certificate needs
        # its authority key identifier and the usual constraints, not just the SAN.
        (directory / "san.ext").write_text(
            "subjectAltName=IP:127.0.0.1\n"
            "authorityKeyIdentifier=keyid,issuer\n"
            "subjectKeyIdentifier=hash\n"
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
        )
        openssl(
            "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt",
        )  # fmt: skip
        return cls(directory / "ca.crt", directory / "server.crt", directory / "server.key")

    def server_args(self) -> tuple[str, ...]:
        return (
            "--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key),
            "--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", "no",
            "--tls-replication", "yes",
        )  # fmt: skip

    def client_kwargs(self) -> dict[str, Any]:
        return {"ssl": True, "ssl_ca_certs": str(self.ca)}


class Node(RedisServer):
    """A redis-server that requires the test ACL user (and only speaks TLS with ``tls``)."""

    def __init__(
        self,
        *,
        extra: tuple[str, ...] = (),
        tls: Tls | None = None,
        cluster_bus: bool = False,
        ports: Callable[[], int] = candidate_port,
    ) -> None:
        super().__init__(extra=(*_ACL, *extra), cluster_bus=cluster_bus, ports=ports)
        self.tls = tls

    def args(self) -> list[str]:
        if self.tls is None:
            return super().args()
        # No plain port: this "--port 0" comes after the "--port N" of RedisServer.args().
        return [
            *super().args(),
            "--port",
            "0",
            "--tls-port",
            str(self.port),
            *self.tls.server_args(),
        ]

    def client(self, db: int = 0, timeout: float = 5) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            db=db,
            username=USERNAME,
            password=PASSWORD,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            **(self.tls.client_kwargs() if self.tls else {}),
        )

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def kill(self) -> None:
        """SIGKILL the process, as a crash would (the temp dir is kept)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def info(self, section: str) -> dict[str, Any]:
        with self.client() as client:
            return dict(client.info(section))


def _commandstats(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


class Topology:
    """What every topology offers the tests."""

    name = "topology"
    # Databases other than 0 exist (Cluster has only db 0).
    has_databases = True
    # Reads may be answered by a replica, which applies writes a moment later.
    reads_from_replicas = False

    location: Any
    options: dict[str, Any]

    def client(self) -> Any:
        """Return a raw redis-py client for the data (writes go to the primary)."""
        raise NotImplementedError

    def data_nodes(self) -> list[Any]:
        """Return the servers holding data that are running."""
        raise NotImplementedError

    def primaries(self) -> list[Any]:
        raise NotImplementedError

    def replicas(self) -> list[Any]:
        primaries = self.primaries()
        return [node for node in self.data_nodes() if node not in primaries]

    def admin(self, node: Any) -> redis.Redis:
        """Return a long-lived client to ``node`` for inspection (closed by ``stop``)."""
        admins: dict[int, redis.Redis] = self.__dict__.setdefault("_admins", {})
        client = admins.get(node.port)
        if client is None:
            client = admins[node.port] = node.client()
        return client

    def close_admins(self) -> None:
        for client in self.__dict__.pop("_admins", {}).values():
            client.close()

    def flush(self) -> None:
        """Empty every database and reset command statistics on every server."""
        for node in self.primaries():
            self.admin(node).flushall()
        self.wait_replicated()
        for node in self.data_nodes():
            self.admin(node).config_resetstat()

    def wait_replicated(self, timeout: float = 5.0) -> None:
        """Wait until every replica has applied everything its primary has written."""
        nodes = {node.port: node for node in self.data_nodes()}
        for replica in self.replicas():
            primary_port = int(self.admin(replica).info("replication")["master_port"])
            if primary_port not in nodes:
                continue  # its primary is down
            offset = int(self.admin(nodes[primary_port]).info("replication")["master_repl_offset"])
            wait_for(
                lambda r=replica, o=offset: (
                    int(  # type: ignore[misc]
                        self.admin(r).info("replication").get("slave_repl_offset", -1)
                    )
                    >= o
                ),
                timeout,
                f"replica {replica.port} to catch up",
            )

    def commandstats(self) -> dict[str, int]:
        """Sum the command counts of the servers clients talk to.

        Replicas execute their primary's write stream too, so only their read-only
        commands (which can only come from clients) are counted; so are the commands that
        replication and Sentinel send on their own (PING, INFO, REPLCONF...).
        """
        total: dict[str, int] = {}
        primaries = self.primaries()
        for node in self.data_nodes():
            for name, calls in _commandstats(self.admin(node)).items():
                if name in _HOUSEKEEPING:
                    continue
                if node in primaries or name in _READ_ONLY_COMMANDS:
                    total[name] = total.get(name, 0) + calls
        return total

    def connections_received(self) -> int:
        """Return how many connections the data servers have accepted so far."""
        return sum(
            int(self.admin(node).info("stats")["total_connections_received"])
            for node in self.data_nodes()
        )

    def tagged(self, key: str) -> str:
        """Return how djredis stores the user key ``key`` inside a full cache key."""
        return key

    def slots(self, keys: list[str]) -> int:
        """Return how many commands a multi-key command on these full keys becomes."""
        return 1

    def read_your_writes(self, cache: Any) -> Any:
        """Return ``cache`` for tests that read right after writing (see ``ReadYourWrites``)."""
        return ReadYourWrites(cache, self) if self.reads_from_replicas else cache

    def stop(self) -> None:
        raise NotImplementedError


class ReadYourWrites:
    """A cache whose every call returns once the replicas have applied the primary's writes.

    Replication is asynchronous: a read sent to a replica right after a write sometimes
    misses it (a few in a thousand on loopback). The behaviour tests read what they just
    wrote, so on a topology that reads from replicas they use their cache through this.
    """

    def __init__(self, cache: Any, topology: Topology) -> None:
        self._cache = cache
        self._topology = topology

    # Methods that do not write (key building, lock objects whose own calls go to the primary).
    _PASS_THROUGH = frozenset(
        {"make_key", "make_and_validate_key", "validate_key", "get_backend_timeout"}
    )

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._cache, name)
        if (
            name.startswith("_")
            or name in self._PASS_THROUGH
            or not callable(attr)
            or inspect.isasyncgenfunction(attr)
        ):
            return attr
        wait = self._topology.wait_replicated
        if inspect.iscoroutinefunction(attr):

            async def call_async(*args: Any, **kwargs: Any) -> Any:
                result = await attr(*args, **kwargs)
                wait()
                return result

            return call_async

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            wait()
            return result

        return call


class Standalone(Topology):
    """The session's standalone server (``tests._servers.RedisServer``)."""

    name = "standalone"

    def __init__(self, server: RedisServer) -> None:
        self.server = server

    @property
    def location(self) -> str:  # type: ignore[override]
        return self.server.url()

    @property
    def options(self) -> dict[str, Any]:  # type: ignore[override]
        return {}

    def client(self) -> redis.Redis:
        return self.server.client()

    def data_nodes(self) -> list[Any]:
        return [self.server]

    def primaries(self) -> list[Any]:
        return [self.server]

    def commandstats(self) -> dict[str, int]:
        """Return the server's command counts, exactly."""
        return _commandstats(self.admin(self.server))

    def stop(self) -> None:
        self.close_admins()


# Sent by replication, Sentinel and the cluster tooling, never by a cache operation.
_HOUSEKEEPING = frozenset(
    {"ping", "info", "publish", "subscribe", "replconf", "psync", "client|setname", "hello"}
)
_READ_ONLY_COMMANDS = frozenset(
    {"get", "mget", "exists", "ttl", "pttl", "scan", "strlen", "type", "dbsize", "keys"}
    # the cache's set, hash and sorted-set reads
    | {"smembers", "sismember", "smismember", "scard", "sscan", "sdiff", "sinter", "sunion"}
    | {"srandmember", "hget", "hgetall", "hkeys", "hlen", "hexists"}
    | {"zrange", "zrevrange", "zrangebyscore", "zrevrangebyscore", "zscore", "zrank"}
    | {"zcard", "zcount"}
)


class Replicated(Topology):
    """A primary and one replica (``replicaof``, diskless sync without delay)."""

    name = "replicas"
    reads_from_replicas = True

    def __init__(self, ports: Callable[[], int] = candidate_port) -> None:
        self.primary = Node(ports=ports)
        self.replica = Node(ports=ports)

    def start(self) -> Replicated:
        self.primary.start()
        self.replica.extra = (
            *self.replica.extra,
            "--replicaof",
            "127.0.0.1",
            str(self.primary.port),
        )
        self.replica.start()
        wait_for(
            lambda: self.replica.info("replication").get("master_link_status") == "up",
            10,
            "the replica to sync",
        )
        return self

    @property
    def location(self) -> list[str]:  # type: ignore[override]
        return [
            f"redis://{USERNAME}:{PASSWORD}@127.0.0.1:{self.primary.port}/0",
            f"redis://{USERNAME}:{PASSWORD}@127.0.0.1:{self.replica.port}/0",
        ]

    @property
    def options(self) -> dict[str, Any]:  # type: ignore[override]
        return {}

    def client(self) -> redis.Redis:
        return self.primary.client()

    def data_nodes(self) -> list[Node]:
        return [n for n in (self.primary, self.replica) if n.process and n.process.poll() is None]

    def primaries(self) -> list[Node]:
        return [self.primary]

    def stop(self) -> None:
        self.close_admins()
        # A server that never started has only its temp dir to remove.
        for node in (self.primary, self.replica):
            node.stop()


class SentinelServer(RedisServer):
    """One Sentinel (``redis-server sentinel.conf --sentinel``) monitoring ``primary_port``."""

    def __init__(
        self,
        *,
        quorum: int,
        down_after_ms: int,
        tls: Tls | None = None,
        ports: Callable[[], int] = candidate_port,
    ) -> None:
        super().__init__(ports=ports)
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.tls = tls
        self.primary_port = 0  # set before start(), once the primary runs

    def args(self) -> list[str]:
        # A Sentinel rewrites its config file, so every start writes it afresh.
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            "\n".join(
                [
                    *(
                        [f"port {self.port}"]
                        if self.tls is None
                        else [
                            "port 0",
                            f"tls-port {self.port}",
                            f"tls-cert-file {self.tls.cert}",
                            f"tls-key-file {self.tls.key}",
                            f"tls-ca-cert-file {self.tls.ca}",
                            "tls-auth-clients no",
                            "tls-replication yes",
                        ]
                    ),
                    "bind 127.0.0.1",
                    f"dir {self.dir}",
                    f"logfile {self.logfile}",
                    f"requirepass {SENTINEL_PASSWORD}",
                    f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} {self.quorum}",
                    f"sentinel auth-user {SERVICE} {USERNAME}",
                    f"sentinel auth-pass {SERVICE} {PASSWORD}",
                    f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}",
                    f"sentinel failover-timeout {SERVICE} 10000",
                    f"sentinel parallel-syncs {SERVICE} 1",
                    "",
                ]
            )
        )
        return [REDIS_SERVER, str(conf), "--sentinel"]

    def client(self, db: int = 0, timeout: float = 2) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=SENTINEL_PASSWORD,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            **(self.tls.client_kwargs() if self.tls else {}),
        )


class Sentinels(Topology):
    """A primary, one replica and three Sentinels monitoring them (quorum 2)."""

    name = "sentinel"
    reads_from_replicas = True

    def __init__(
        self,
        down_after_ms: int = DOWN_AFTER_MS,
        sentinels: int = 3,
        replica: bool = True,
        tls: Tls | None = None,
        ports: Callable[[], int] = candidate_port,
    ) -> None:
        self.tls = tls
        self.servers = [Node(tls=tls, ports=ports) for _ in range(2 if replica else 1)]
        self.sentinels = [
            SentinelServer(
                quorum=min(2, sentinels), down_after_ms=down_after_ms, tls=tls, ports=ports
            )
            for _ in range(sentinels)
        ]

    @property
    def sentinel_ports(self) -> list[int]:
        return [sentinel.port for sentinel in self.sentinels]

    def start(self) -> Sentinels:
        primary, *replicas = self.servers
        primary.start()
        for replica in replicas:
            replica.extra = (*replica.extra, "--replicaof", "127.0.0.1", str(primary.port))
            replica.start()
            wait_for(
                lambda r=replica: r.info("replication").get("master_link_status") == "up",  # type: ignore[misc]
                10,
                "the replica to sync",
            )
        for sentinel in self.sentinels:
            sentinel.primary_port = primary.port
            sentinel.start()
        wait_for(self._sentinels_ready, 30, "the sentinels to see each other and the replica")
        return self

    def sentinel_client(self, port: int) -> redis.Redis:
        return next(sentinel for sentinel in self.sentinels if sentinel.port == port).client()

    def _sentinels_ready(self) -> bool:
        others, replicas = len(self.sentinel_ports) - 1, len(self.servers) - 1
        for port in self.sentinel_ports:
            with self.sentinel_client(port) as client:
                state = client.sentinel_master(SERVICE)
                if int(state["num-other-sentinels"]) != others:
                    return False
                if int(state["num-slaves"]) != replicas:
                    return False
                seen = client.sentinel_slaves(SERVICE)
                if any(r.get("master-link-status") != "ok" for r in seen):
                    return False
        return True

    def master_address(self) -> tuple[str, int]:
        """Return the primary's address as the first Sentinel that answers sees it."""
        clients: dict[int, redis.Redis] = self.__dict__.setdefault("_sentinel_admins", {})
        for port in self.sentinel_ports:
            client = clients.get(port) or clients.setdefault(port, self.sentinel_client(port))
            try:
                host, master_port = client.sentinel_get_master_addr_by_name(SERVICE)
                return host.decode() if isinstance(host, bytes) else str(host), int(master_port)
            except redis.exceptions.ConnectionError:
                continue
        raise RuntimeError("no sentinel answers")

    def current_primary(self) -> Node:
        port = self.master_address()[1]
        return next(node for node in self.servers if node.port == port)

    @property
    def location(self) -> str:  # type: ignore[override]
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
        return f"{scheme}://{USERNAME}:{PASSWORD}@{hosts}/{SERVICE}/0"

    @property
    def options(self) -> dict[str, Any]:  # type: ignore[override]
        options: dict[str, Any] = {
            "SENTINEL_KWARGS": {"password": SENTINEL_PASSWORD},
            "READ_FROM_REPLICAS": True,
        }
        if self.tls:  # the Sentinels inherit ssl_* from the data nodes' options
            options["ssl_ca_certs"] = str(self.tls.ca)
        return options

    def client(self) -> redis.Redis:
        return self.current_primary().client()

    def data_nodes(self) -> list[Node]:
        return [n for n in self.servers if n.process and n.process.poll() is None]

    def primaries(self) -> list[Node]:
        return [self.current_primary()]

    def stop(self) -> None:
        self.close_admins()
        for client in self.__dict__.pop("_sentinel_admins", {}).values():
            client.close()
        for server in [*self.sentinels, *self.servers]:
            server.stop()


class Cluster(Topology):
    """A Redis Cluster: ``primaries`` primaries with ``replicas`` replica each."""

    name = "cluster"
    has_databases = False
    splits_by_slot = True

    def __init__(
        self,
        primaries: int = 3,
        replicas: int = 1,
        tls: Tls | None = None,
        ports: Callable[[], int] = candidate_port,
    ) -> None:
        self.replicas_per_primary = replicas
        self.tls = tls
        self.nodes = [
            Node(
                tls=tls,
                cluster_bus=True,
                ports=ports,
                extra=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    str(NODE_TIMEOUT_MS),
                    "--cluster-require-full-coverage",
                    "no",
                    # Replicas show up in CLUSTER SLOTS once their offset moves, which
                    # on an idle primary takes one replication ping (default 10 s).
                    "--repl-ping-replica-period",
                    "1",
                    *(("--tls-cluster", "yes") if tls else ()),
                ),
            )
            for _ in range(primaries * (1 + replicas))
        ]

    def start(self) -> Cluster:
        for node in self.nodes:
            # RedisServer.start() passes --databases 16, which cluster mode ignores.
            node.start()
        created = subprocess.run(
            [
                "redis-cli",
                "--user",
                USERNAME,
                "--pass",
                PASSWORD,
                "--no-auth-warning",
                *(("--tls", "--cacert", str(tls.ca)) if (tls := self.tls) else ()),
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                str(self.replicas_per_primary),
                "--cluster-yes",
            ],
            capture_output=True,
            timeout=60,
        )
        if created.returncode:
            output = (created.stdout + created.stderr).decode(errors="replace")
            raise RuntimeError(f"redis-cli --cluster create failed:\n{output[-2000:]}")
        self.wait_healthy()
        return self

    def _healthy(self) -> bool:
        """Every node agrees: state ok, every slot served, every replica in sync."""
        expected = len([n for n in self.nodes if n.process and n.process.poll() is None])
        for node in self.data_nodes():
            with node.client() as client:
                if b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                    self.unhealthy = f"{node.port}: cluster_state not ok"
                    return False
                shards = client.execute_command("CLUSTER", "SLOTS")
                if sum(end - start + 1 for start, end, *_ in shards) != 16384:
                    self.unhealthy = f"{node.port}: not every slot is served"
                    return False
                if sum(len(entry) - 2 for entry in shards) != expected:
                    self.unhealthy = f"{node.port}: slot map {shards!r}"
                    return False
                replication = client.info("replication")
                if replication["role"] == "slave" and replication["master_link_status"] != "up":
                    self.unhealthy = f"{node.port}: replica link down"
                    return False
        return True

    def wait_healthy(self, timeout: float = 30) -> None:
        self.unhealthy = ""
        try:
            wait_for(self._healthy, timeout, "the cluster to be healthy")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {self.unhealthy}") from None

    @property
    def location(self) -> str:  # type: ignore[override]
        seed = self.primaries()[0]
        scheme = "rediss+cluster" if self.tls else "redis+cluster"
        return f"{scheme}://{USERNAME}:{PASSWORD}@127.0.0.1:{seed.port}"

    @property
    def options(self) -> dict[str, Any]:  # type: ignore[override]
        return {"ssl_ca_certs": str(self.tls.ca)} if self.tls else {}

    def client(self) -> RedisCluster:
        seed = self.data_nodes()[0]
        return RedisCluster(
            startup_nodes=[ClusterNode("127.0.0.1", seed.port)],
            username=USERNAME,
            password=PASSWORD,
            socket_timeout=5,
            **(self.tls.client_kwargs() if self.tls else {}),
        )

    def data_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.process and n.process.poll() is None]

    def primaries(self) -> list[Node]:
        return [
            n for n in self.data_nodes() if self.admin(n).info("replication")["role"] == "master"
        ]

    def node_for(self, key: str) -> Node:
        """Return the primary serving ``key``'s slot."""
        slot = key_slot(key.encode())
        seed = self.data_nodes()[0]
        with seed.client() as client:
            for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(primary[1])
                    return next(n for n in self.nodes if n.port == port)
        raise RuntimeError(f"slot {slot} is not served")

    def tagged(self, key: str) -> str:
        return "{" + key + "}"

    def slots(self, keys: list[str]) -> int:
        return len({key_slot(k.encode()) for k in keys})

    def stop(self) -> None:
        self.close_admins()
        # A server that never started has only its temp dir to remove.
        for node in self.nodes:
            node.stop()


def started(topology: Any) -> Iterator[Any]:
    """Start ``topology`` for a fixture and stop it afterwards, even on failure."""
    try:
        yield topology.start()
    finally:
        topology.stop()
