"""An ASGI app served by uvicorn in a thread of this process, on a loopback port."""

from __future__ import annotations

import threading
import time
from typing import Any, Self

import uvicorn

from persai.launcher.process import LOOPBACK, free_port


class ThreadedServer:
    """`app` on 127.0.0.1:port in a daemon thread; `start()` again after `stop()` serves on
    the same port (a server that restarts)."""

    def __init__(self, app: Any, *, port: int = 0, name: str = "asgi", **config: Any) -> None:
        self.app = app
        self.port = port or free_port()
        self.name = name
        self._config = {"log_config": None, "lifespan": "off", "ws": "none", **config}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> Self:
        """Serve, and return once uvicorn says it has started."""
        config = uvicorn.Config(self.app, host=LOOPBACK, port=self.port, **self._config)
        server = self._server = uvicorn.Server(config)
        thread = self._thread = threading.Thread(target=server.run, name=self.name, daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving; the port is free again when this returns. Safe to call twice."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=timeout_s)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_in_thread(
    app: Any, *, port: int = 0, name: str = "asgi", timeout_s: float = 10.0, **config: Any
) -> ThreadedServer:
    """Serve `app` in a thread (uvicorn `config` on top of quiet defaults); stop() it after."""
    return ThreadedServer(app, port=port, name=name, **config).start(timeout_s)
