"""A real Alertmanager (0.25, Debian's `prometheus-alertmanager`) on a free loopback port.

    alertmanager = AlertmanagerServer.start(tmp_path, config)
    prometheus = PrometheusServer.start(..., alertmanagers=[alertmanager.address])
    alertmanager.stop()

`config` is Alertmanager's configuration as a dict (route, receivers with `webhook_configs`).
Clustering is off (`--cluster.listen-address=`), so nothing listens beyond the web port.
`NotificationReceiver` is where PersAI's notifications of alert investigations arrive.
A missing binary skips the test, except under `CI=true`, where it fails it.
"""

from __future__ import annotations

import hmac
import json
import shutil
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from persai.launcher import Child, free_port, wait_until
from persai.launcher.process import stop_if_unready
from persai.launcher.servers import answers_ok
from tests.support.require import missing

BINARIES = ("prometheus-alertmanager", "alertmanager")
INSTALL_HINT = "install it with `apt-get install prometheus-alertmanager` (Debian/Ubuntu)"


def require_alertmanager() -> str:
    """The path of Alertmanager's binary (Debian names it `prometheus-alertmanager`); skips
    the test when missing (fails under CI=true)."""
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    missing(f"prometheus-alertmanager not found on PATH: {INSTALL_HINT}")


class AlertmanagerServer:
    """A running Alertmanager, a `persai.launcher.Child` (how dev, tests and benchmarks start
    servers): `.url`, `.address`, `.stop()`."""

    def __init__(self, child: Child, port: int) -> None:
        self.child = child
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    @property
    def address(self) -> str:
        """host:port, as Prometheus's `alertmanagers` static targets name it."""
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls,
        work_dir: Path,
        config: dict[str, Any],
        *,
        port: int | None = None,
        timeout_s: float = 30.0,
    ) -> AlertmanagerServer:
        """`port`: one chosen before (Prometheus may be told of it before it listens)."""
        binary = require_alertmanager()
        work_dir.mkdir(parents=True, exist_ok=True)
        config_path = work_dir / "alertmanager.yml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        port = port or free_port()
        argv = [
            binary,
            f"--config.file={config_path}",
            f"--storage.path={work_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]
        child = Child.spawn("alertmanager", argv, log_path=work_dir / "log", port=port)
        with httpx.Client(timeout=1.0) as client:
            stop_if_unready(
                child,
                lambda: wait_until(
                    lambda: answers_ok(client, f"{child.url}/-/ready"),
                    timeout_s,
                    "alertmanager not ready",
                    child=child,
                ),
            )
        return cls(child, port)

    def stop(self) -> None:
        self.child.stop()


class NotificationReceiver:
    """An HTTP server that takes PersAI's notifications and checks their signatures.

    `fail[job_id]` requests about that investigation are answered 503; the first webhook
    request (`/hook`) about investigation `hold_for` waits (`held` is set when it arrives)
    until `release` is set or 10 s pass.
    """

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self.fail: dict[str, int] = {}
        self.hold_for: str | None = None
        self.held = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> NotificationReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def bodies(self, path: str = "/hook", *, answered: bool = True) -> list[dict[str, Any]]:
        with self._lock:
            return [
                r.body
                for r in self.received
                if r.path == path and (r.status == 200 or not answered)
            ]

    def _take(self, received: Received) -> int:
        about = json.dumps(received.body)
        with self._lock:
            self.received.append(received)
            for job_id, left in self.fail.items():
                if left > 0 and job_id in about:
                    self.fail[job_id] -= 1
                    received.status = 503
            hold = self.hold_for is not None and self.hold_for in about and received.path == "/hook"
            if hold:
                self.hold_for = None
        if hold:
            self.held.set()
            self.release.wait(10)
        return received.status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                timestamp = self.headers.get("X-PersAI-Timestamp", "")
                mac = hmac.new(receiver.secret.encode(), f"{timestamp}.".encode() + body, "sha256")
                signed = hmac.compare_digest(
                    self.headers.get("X-PersAI-Signature", ""), "sha256=" + mac.hexdigest()
                )
                received = Received(
                    self.path, json.loads(body), self.headers.get("X-PersAI-Delivery", ""), signed
                )
                status = receiver._take(received)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        return Handler


@dataclass
class Received:
    path: str
    body: dict[str, Any]
    delivery: str
    signed: bool
    status: int = 200
