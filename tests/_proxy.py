"""A TCP proxy in front of a real redis-server that misbehaves on request.

The server behind it is real; the proxy only loses, slows down or garbles what the server
says, the way a network, a crash at the wrong moment or a broken middlebox would.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any


class FaultyProxy:
    """A TCP proxy in front of a real server that can lose, slow down or replace replies.

    ``fault`` applies to the next server reply only (then the proxy forwards normally):
    ``("drop", None)`` closes the client's connection instead of forwarding it (the server
    executed the command; the client never learns it; ``on_drop`` runs first),
    ``("replace", data)`` sends ``data`` instead, ``("append", data)`` sends the reply then
    ``data``. ``trickle`` forwards every
    reply one byte at a time, ``trickle`` seconds apart. ``throttle = (size, pause)``
    forwards everything, both ways, ``size`` bytes every ``pause`` seconds (a slow but
    steady link). ``sent`` records every chunk the
    clients sent, to count the commands the server received. ``stall()`` turns the
    connections open now half-open: from then on they forward nothing either way and
    close nothing (a peer gone without a word); new connections work.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.fault: tuple[str, bytes | None] | None = None
        self.trickle = 0.0
        self.throttle: tuple[int, float] | None = None
        self.on_drop: Callable[[], None] | None = None
        self.sent: list[bytes] = []
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self._clients: list[socket.socket] = []
        self._sockets: list[socket.socket] = []
        self._stalled: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._spawn(self._accept)

    def location(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def count(self, name: bytes) -> int:
        """How many commands named ``name`` (e.g. b"INCR") the clients sent through."""
        marker = b"\r\n" + name.upper() + b"\r\n"
        with self._lock:
            return sum(chunk.upper().count(marker) for chunk in self.sent)

    def stall(self) -> None:
        """Stop forwarding on every connection open now, without closing any."""
        with self._lock:
            self._stalled.update(self._sockets)

    def push(self, data: bytes) -> None:
        """Send ``data`` to every client connection now, unasked."""
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.sendall(data)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            if self.throttle is not None:
                # As on a slow link, the backlog waits in the sender's send queue, not here.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.throttle[0])
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets += [client, server]
                self._clients.append(client)
            self._spawn(self._pump, client, server, True)
            self._spawn(self._pump, server, client, False)

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        source.settimeout(0.05)
        while not self._stop.is_set():
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            if source in self._stalled:
                continue
            try:
                if from_client:
                    with self._lock:
                        self.sent.append(data)
                    self._forward(target, data)
                else:
                    self._reply(source, target, data)
            except OSError:
                break
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _forward(self, target: socket.socket, data: bytes) -> None:
        throttle = self.throttle
        if throttle is None:
            target.sendall(data)
            return
        size, pause = throttle
        for start in range(0, len(data), size):
            if self._stop.is_set() or target in self._stalled:
                return
            target.sendall(data[start : start + size])
            time.sleep(pause)

    def _reply(self, server: socket.socket, client: socket.socket, data: bytes) -> None:
        with self._lock:
            fault, self.fault = self.fault, None
        if fault is None:
            if not self.trickle:
                self._forward(client, data)
                return
            for byte in data:
                client.sendall(bytes([byte]))
                time.sleep(self.trickle)
            return
        kind, extra = fault
        if kind == "drop":
            if self.on_drop is not None:
                self.on_drop()
            raise OSError("reply dropped")  # the pump shuts both sockets
        if kind == "replace":
            client.sendall(extra or b"")
        else:
            client.sendall(data + (extra or b""))
