"""A TCP proxy on a free loopback port that can lose a server's replies, as a network blip does.

While a blip lasts, every request still reaches the server (and runs there), but each reply is
dropped and the client's connection closed: the client cannot tell whether its command ran.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from tests.support.ports import free_port

_TAIL = 256
"""Bytes of a connection's requests kept to find a trigger split across reads."""


class BlipProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target_port`."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._trigger: bytes | None = None
        self._window_s = 0.0
        self._blip_until = 0.0
        self.blips = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def blip_on(self, trigger: bytes, window_s: float) -> None:
        """From the next request containing `trigger` on, lose every reply for `window_s`."""
        with self._lock:
            self._trigger, self._window_s = trigger, window_s

    def blipping(self) -> bool:
        return time.monotonic() < self._blip_until

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._requests, args=(client, server), daemon=True).start()
            threading.Thread(target=self._replies, args=(server, client), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket) -> None:
        tail = b""
        try:
            while data := client.recv(65536):
                tail = (tail + data)[-_TAIL - len(data) :]
                with self._lock:
                    if self._trigger is not None and self._trigger in tail:
                        self._trigger = None
                        self._blip_until = time.monotonic() + self._window_s
                        self.blips += 1
                server.sendall(data)  # it reaches the server, blip or not
        except OSError:
            pass
        finally:
            _close(client, server)

    def _replies(self, server: socket.socket, client: socket.socket) -> None:
        try:
            while data := server.recv(65536):
                if self.blipping():
                    break  # the reply is lost with the connection
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client, server)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
