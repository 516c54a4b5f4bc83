"""Where Perses serves plugins, as a browser meets it: a page, its plugins and Perses's API.

Serves the built host page (plugin/e2e/dist), the plugins as Perses 0.54 serves them from its
plugins folder (internal/api/plugin/plugin.go: `GET /api/v1/plugins` lists each folder's module
from its mf-manifest.json name and version and its package.json `perses` section; the folder's
files under `/plugins/{name}/`), and hands `/api/*` and `/proxy/*` to the Perses stand-in, so that
the page's cookies and the datasource proxy work as on a Perses host.

    host = PluginHost(standin.base_url, {"PersAI": PLUGIN / "dist", ...}, PLUGIN / "e2e/dist")
    url = host.start()
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tests.support.ports import free_port

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "plugin"
CHROMIUM = "/usr/bin/chromium"
PLAYWRIGHT = "node_modules/playwright-core"
BUILD_HINT = "build it with `cd plugin && npm ci && npm run build && npm run build:e2e`"


def require_plugin_build() -> None:
    """Skip (fail under CI=true) without chromium, node or the built plugin and host page."""
    missing = [
        what
        for what, present in (
            (f"chromium ({CHROMIUM}; apt-get install chromium)", Path(CHROMIUM).exists()),
            ("node (Node.js 20)", shutil.which("node") is not None),
            (f"plugin/dist ({BUILD_HINT})", (PLUGIN_DIR / "dist/mf-manifest.json").exists()),
            (f"plugin/e2e/dist ({BUILD_HINT})", (PLUGIN_DIR / "e2e/dist/index.html").exists()),
            (
                "playwright-core (npm ci in plugin/)",
                (PLUGIN_DIR / "node_modules/playwright-core").exists(),
            ),
        )
        if not present
    ]
    if not missing:
        return
    message = "the browser test needs " + ", ".join(missing)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def plugin_module(folder: Path) -> dict[str, Any]:
    """The PluginModule resource Perses lists for a plugin folder (plugin.go loadSinglePlugin)."""
    manifest = json.loads((folder / "mf-manifest.json").read_text())
    package = json.loads((folder / "package.json").read_text())
    return {
        "kind": "PluginModule",
        "metadata": {
            "name": manifest["name"],
            "version": manifest["metaData"]["buildInfo"]["buildVersion"],
        },
        "spec": package["perses"],
        "status": {"isLoaded": True, "inDev": False},
    }


class PluginHost:
    def __init__(self, perses_url: str, plugins: Mapping[str, Path], page: Path) -> None:
        self.perses_url = perses_url.rstrip("/")
        self.plugins = dict(plugins)
        self.page = page
        self.port = free_port()
        self._http: httpx.AsyncClient | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        routes = [
            Route("/", self._index),
            Route("/api/v1/plugins", self._list),
            *(
                Mount(f"/plugins/{name}", StaticFiles(directory=folder))
                for name, folder in self.plugins.items()
            ),
            Mount("/static", StaticFiles(directory=page / "static")),
            Route("/api/{path:path}", self._forward, methods=["GET", "POST", "PUT", "DELETE"]),
            Route("/proxy/{path:path}", self._forward, methods=["GET", "POST", "PUT", "DELETE"]),
        ]
        self.app = Starlette(routes=routes, lifespan=self._lifespan)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", ws="none"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="plugin-host", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the plugin host did not start on port {self.port}")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=30) as http:
            self._http = http
            yield

    async def _index(self, _request: Request) -> Response:
        return FileResponse(self.page / "index.html")

    async def _list(self, _request: Request) -> Response:
        return JSONResponse([plugin_module(folder) for folder in self.plugins.values()])

    async def _forward(self, request: Request) -> Response:
        assert self._http is not None
        kept = {"content-type", "cookie", "authorization", "accept"}
        headers = {k: v for k, v in request.headers.items() if k.lower() in kept}
        upstream = await self._http.request(
            request.method,
            self.perses_url + request.url.path,
            params=request.url.query,
            content=await request.body(),
            headers=headers,
        )
        media_type = upstream.headers.get("content-type")
        return Response(upstream.content, status_code=upstream.status_code, media_type=media_type)
