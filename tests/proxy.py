"""A TCP proxy the tests can freeze, cut and take down, to break an MQTT connection at an exact
point without touching the broker (whose other clients then see nothing happen)."""

from __future__ import annotations

import contextlib
import select
import socket
import threading

from tests.helpers import free_port


class TcpProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host, self.target_port = host, target_port
        self.port = free_port()
        self._server = socket.create_server((host, self.port))
        self._lock = threading.Lock()  # held by a pump while it forwards one chunk
        self._frozen = False
        self._thawed = threading.Event()
        self._thawed.set()
        self._down = False
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        """From now on nothing is forwarded in either direction: bytes stay in the sockets."""
        with self._lock:
            self._frozen = True
            self._thawed.clear()

    def cut(self) -> None:
        """Close every open connection (what was held is lost); new ones forward normally."""
        with self._lock:
            self._frozen = False
            self._thawed.set()
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._sockets.clear()

    def down(self) -> None:
        """Refuse new connections (close them at once), as if the broker were unreachable."""
        self._down = True
        self.cut()

    def up(self) -> None:
        self._down = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self._down:
                client.close()
                continue
            try:
                upstream = socket.create_connection((self.host, self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                ready, _, _ = select.select([src], [], [], 0.05)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            if self._frozen:
                self._thawed.wait(0.05)
                continue
            with self._lock:
                if self._frozen:
                    continue
                try:
                    data = src.recv(65536)
                    if not data:
                        raise OSError("closed")
                    dst.sendall(data)
                except OSError:
                    for s in (src, dst):
                        with contextlib.suppress(OSError):
                            s.shutdown(socket.SHUT_RDWR)
                    return
