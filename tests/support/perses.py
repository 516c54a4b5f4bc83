"""A small Perses stand-in for tests, built to the contract in DESIGN.md and real Perses.

It signs HS512 tokens with the claims real Perses puts in them (`sub`, `exp`, `nbf`, `pkd`,
`pid`: internal/api/crypto/jwt.go), sets the three cookies on login and refresh, answers
`/api/auth/refresh`, `/api/v1/user/whoami`, a few read-only resource lists, and the datasource
proxy routes, which forward to a real Prometheus after checking the caller's permissions.

    perses = PersesStandin(access_ttl_s=5)
    perses.add_user("alice", "secret", projects={"shop"})
    perses.add_datasource("prom", prometheus_url, project="shop")
    base_url = perses.start()
    ...
    perses.count("refresh")   # calls answered by POST /api/auth/refresh
    perses.stop()             # connection refused until start() again (same port)
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.ports import free_port

ALGORITHM = "HS512"
COOKIE_PAYLOAD = "jwtPayload"
COOKIE_SIGNATURE = "jwtSignature"
COOKIE_REFRESH = "jwtRefreshToken"
_TIMESTAMP = "2025-01-01T00:00:00Z"

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class User:
    name: str
    password: str
    projects: set[str] = field(default_factory=set)
    """Projects whose datasources and dashboards the user may read; `"*"` means all."""
    global_datasources: bool = True
    """Whether the user may read (and query through) global datasources."""

    def can_read(self, project: str | None) -> bool:
        if project is None:
            return self.global_datasources
        return "*" in self.projects or project in self.projects


@dataclass
class Datasource:
    name: str
    url: str
    """Base URL of the Prometheus the proxy forwards to."""
    project: str | None = None
    """None for a GlobalDatasource."""


@dataclass
class Dashboard:
    project: str
    name: str
    datasource: str
    panels: dict[str, str]
    """Panel title -> PromQL, each drawn as a TimeSeriesChart."""


@dataclass
class Tokens:
    access_token: str
    refresh_token: str

    @property
    def cookies(self) -> dict[str, str]:
        """The three cookies a browser holds after signing in to Perses."""
        header, payload, signature = self.access_token.split(".")
        return {
            COOKIE_PAYLOAD: f"{header}.{payload}",
            COOKIE_SIGNATURE: signature,
            COOKIE_REFRESH: self.refresh_token,
        }


def forge_token(
    payload: dict[str, Any] | str,
    *,
    header: dict[str, Any] | None = None,
    signature: bytes = b"\x00" * 64,
) -> str:
    """A JWT-shaped string with any header and payload (a str payload is used as is),
    for tests of what a client may send."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = json.dumps(header or {"alg": ALGORITHM, "typ": "JWT"}).encode()
    body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    return f"{b64(head)}.{b64(body)}.{b64(signature)}"


def _error(status: int, message: str) -> JSONResponse:
    # Perses answers errors as echo.HTTPError: {"message": "..."}.
    return JSONResponse({"message": message}, status_code=status)


def _metadata(name: str, project: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "createdAt": _TIMESTAMP, "updatedAt": _TIMESTAMP}
    if project is not None:
        meta["project"] = project
    meta["version"] = 0
    return meta


class PersesStandin:
    """Perses on a free loopback port, served by uvicorn in a background thread."""

    def __init__(self, *, access_ttl_s: int = 900, refresh_ttl_s: int = 86_400) -> None:
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.access_key = secrets.token_bytes(64)
        self.refresh_key = secrets.token_bytes(64)
        self.users: dict[str, User] = {}
        self.datasources: list[Datasource] = []
        self.dashboards: list[Dashboard] = []
        self.fail_status: int | None = None
        """When set, every route answers this status (e.g. 503) instead of working."""
        self._calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._http: httpx.AsyncClient | None = None
        self.app = Starlette(routes=self._routes(), lifespan=self._lifespan)

    # Configuration -----------------------------------------------------------------------

    def add_user(
        self, name: str, password: str, *, projects: set[str] | None = None, global_ds: bool = True
    ) -> User:
        user = User(name, password, set(projects or ()), global_ds)
        self.users[name] = user
        return user

    def add_datasource(self, name: str, url: str, *, project: str | None = None) -> Datasource:
        datasource = Datasource(name, url.rstrip("/"), project)
        self.datasources.append(datasource)
        return datasource

    def add_dashboard(
        self, project: str, name: str, *, datasource: str, panels: dict[str, str]
    ) -> Dashboard:
        dashboard = Dashboard(project, name, datasource, dict(panels))
        self.dashboards.append(dashboard)
        return dashboard

    # Tokens ------------------------------------------------------------------------------

    def sign(self, claims: dict[str, Any], *, refresh: bool = False) -> str:
        """Sign any claims with this Perses's key (for tests that need odd tokens)."""
        key = self.refresh_key if refresh else self.access_key
        return jwt.encode(claims, key, algorithm=ALGORITHM)

    def issue_tokens(self, user: str, *, access_ttl_s: int | None = None) -> Tokens:
        """What a native login returns, without an HTTP call (not counted)."""
        return Tokens(
            self._token(user, access_ttl_s or self.access_ttl_s, refresh=False),
            self._token(user, self.refresh_ttl_s, refresh=True),
        )

    def _token(self, user: str, ttl_s: int, *, refresh: bool) -> str:
        now = int(time.time())
        claims = {"sub": user, "exp": now + ttl_s, "nbf": now, "pkd": "native", "pid": ""}
        return self.sign(claims, refresh=refresh)

    def _claims(self, token: str, *, refresh: bool) -> dict[str, Any] | None:
        key = self.refresh_key if refresh else self.access_key
        try:
            claims: dict[str, Any] = jwt.decode(token, key, algorithms=[ALGORITHM])
        except jwt.PyJWTError:
            return None
        return claims

    # Lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the Perses stand-in was never started")
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> str:
        """Serve (again) on this stand-in's port; returns the base URL."""
        if self._port is None:
            self._port = free_port()
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self._port,
            log_level="warning",
            lifespan="on",
            ws="none",
            http="h11",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="perses-standin", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the Perses stand-in did not start on port {self._port}")
            time.sleep(0.01)
        return self.base_url

    def stop(self) -> None:
        """Stop serving: connections to the port are refused until `start()`."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> PersesStandin:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Counters ----------------------------------------------------------------------------

    def count(self, endpoint: str) -> int:
        """Calls answered so far: login, refresh, whoami, proxy, projects, globaldatasources,
        datasources, dashboards, dashboard."""
        with self._lock:
            return self._calls[endpoint]

    def reset_counts(self) -> None:
        with self._lock:
            self._calls.clear()

    # The app -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=30) as http:
            self._http = http
            yield

    def _routes(self) -> list[Route]:
        project = "/api/v1/projects/{project}"
        proxies = (
            "/proxy/globaldatasources/{name}/{path:path}",
            "/proxy/projects/{project}/datasources/{name}/{path:path}",
            "/proxy/projects/{project}/dashboards/{dashboard}/datasources/{name}/{path:path}",
        )
        authed: list[tuple[str, str, Callable[[Request, User], Awaitable[Response]]]] = [
            ("/api/v1/user/whoami", "whoami", self._whoami),
            ("/api/v1/projects", "projects", self._projects),
            ("/api/v1/globaldatasources", "globaldatasources", self._globals),
            (f"{project}/datasources", "datasources", self._project_datasources),
            (f"{project}/dashboards", "dashboards", self._dashboards),
            (f"{project}/dashboards/{{dashboard}}", "dashboard", self._dashboard),
        ]
        login = self._counted("login", self._login)
        return [
            Route("/api/auth/providers/native/login", login, methods=["POST"]),
            Route("/api/auth/refresh", self._counted("refresh", self._refresh), methods=["POST"]),
            *(Route(path, self._authed(name, handler)) for path, name, handler in authed),
            *(
                Route(p, self._authed("proxy", self._proxy), methods=["GET", "POST"])
                for p in proxies
            ),
        ]

    def _counted(self, name: str, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            with self._lock:
                self._calls[name] += 1
            if self.fail_status is not None:
                return _error(self.fail_status, "the Perses stand-in is failing on purpose")
            return await handler(request)

        return endpoint

    def _authed(
        self, name: str, handler: Callable[[Request, User], Awaitable[Response]]
    ) -> Handler:
        async def endpoint(request: Request) -> Response:
            token = self._request_token(request)
            if token is None:  # echo-jwt: ErrJWTMissing
                return _error(400, "missing or malformed jwt")
            claims = self._claims(token, refresh=False)
            user = self.users.get(str(claims.get("sub"))) if claims else None
            if user is None:  # echo-jwt: ErrJWTInvalid
                return _error(401, "invalid or expired jwt")
            return await handler(request, user)

        return self._counted(name, endpoint)

    @staticmethod
    def _request_token(request: Request) -> str | None:
        # Like Perses: the two access-token cookies, when both are there, win over the header.
        payload = request.cookies.get(COOKIE_PAYLOAD)
        signature = request.cookies.get(COOKIE_SIGNATURE)
        if payload and signature:
            return f"{payload}.{signature}"
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    def _with_cookies(self, body: dict[str, Any], tokens: Tokens, *, refresh: bool) -> Response:
        response = JSONResponse(body)
        cookies = tokens.cookies
        names = [COOKIE_PAYLOAD, COOKIE_SIGNATURE] + ([COOKIE_REFRESH] if refresh else [])
        for name in names:
            ttl = self.refresh_ttl_s if name == COOKIE_REFRESH else self.access_ttl_s
            response.set_cookie(
                name,
                cookies[name],
                max_age=ttl,
                path="/",
                httponly=name != COOKIE_PAYLOAD,
                samesite="lax",
            )
        return response

    async def _login(self, request: Request) -> Response:
        try:
            body = await request.json()
            login, password = str(body["login"]), str(body["password"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "invalid login body")
        user = self.users.get(login)
        if user is None or not secrets.compare_digest(user.password, password):
            return _error(400, "wrong login or password ")
        tokens = self.issue_tokens(login)
        body = {
            "access_token": tokens.access_token,
            "token_type": "Bearer",
            "refresh_token": tokens.refresh_token,
            "expiry": "0001-01-01T00:00:00Z",
        }
        return self._with_cookies(body, tokens, refresh=True)

    async def _refresh(self, request: Request) -> Response:
        # Like Perses: the refresh-token cookie first, else the JSON body.
        token = request.cookies.get(COOKIE_REFRESH)
        if token is None:
            try:
                token = str((await request.json()).get("refresh_token") or "")
            except (ValueError, AttributeError):
                return _error(400, "invalid refresh body")
        if not token:
            return _error(400, "no refresh token has been found")
        claims = self._claims(token, refresh=True)
        if claims is None:
            return _error(400, "token is malformed, expired or not signed by this Perses")
        access = self._token(str(claims["sub"]), self.access_ttl_s, refresh=False)
        body = {
            "access_token": access,
            "token_type": "Bearer",
            "refresh_token": token,
            "expiry": "0001-01-01T00:00:00Z",
            "expires_in": self.access_ttl_s,
        }
        return self._with_cookies(body, Tokens(access, token), refresh=False)

    async def _whoami(self, _request: Request, user: User) -> Response:
        return JSONResponse({"kind": "User", "metadata": _metadata(user.name), "spec": {}})

    async def _projects(self, _request: Request, user: User) -> Response:
        names = sorted(
            {ds.project for ds in self.datasources if ds.project}
            | {db.project for db in self.dashboards}
        )
        return JSONResponse(
            [
                {"kind": "Project", "metadata": _metadata(p), "spec": {"display": {"name": p}}}
                for p in names
                if user.can_read(p)
            ]
        )

    async def _globals(self, _request: Request, user: User) -> Response:
        if not user.can_read(None):
            return _error(403, "missing 'read' global permission for 'GlobalDatasource' kind")
        return JSONResponse([_datasource(ds) for ds in self.datasources if ds.project is None])

    async def _project_datasources(self, request: Request, user: User) -> Response:
        project = request.path_params["project"]
        if not user.can_read(project):
            return _forbidden(project, "Datasource")
        return JSONResponse([_datasource(ds) for ds in self.datasources if ds.project == project])

    async def _dashboards(self, request: Request, user: User) -> Response:
        project = request.path_params["project"]
        if not user.can_read(project):
            return _forbidden(project, "Dashboard")
        return JSONResponse([_dashboard(db) for db in self.dashboards if db.project == project])

    async def _dashboard(self, request: Request, user: User) -> Response:
        project, name = request.path_params["project"], request.path_params["dashboard"]
        if not user.can_read(project):
            return _forbidden(project, "Dashboard")
        for dashboard in self.dashboards:
            if (dashboard.project, dashboard.name) == (project, name):
                return JSONResponse(_dashboard(dashboard))
        return _error(404, "document not found")

    async def _proxy(self, request: Request, user: User) -> Response:
        params = request.path_params
        project: str | None = params.get("project")
        if not user.can_read(project):
            return (
                _forbidden(project, "Datasource")
                if project
                else _error(403, "missing 'read' global permission for 'GlobalDatasource' kind")
            )
        if "dashboard" in params and not any(
            (db.project, db.name) == (project, params["dashboard"]) for db in self.dashboards
        ):
            return _error(404, "document not found")
        target = next(
            (ds for ds in self.datasources if (ds.project, ds.name) == (project, params["name"])),
            None,
        )
        if target is None:
            return _error(404, "document not found")
        return await self._forward(request, f"{target.url}/{params['path']}")

    async def _forward(self, request: Request, url: str) -> Response:
        assert self._http is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() == "content-type"}
        try:
            upstream = await self._http.request(
                request.method,
                url,
                params=request.url.query,
                content=await request.body(),
                headers=headers,
            )
        except httpx.HTTPError as exc:
            return _error(502, f"error proxying, remote unreachable: {type(exc).__name__}")
        media_type = upstream.headers.get("content-type")
        return Response(upstream.content, status_code=upstream.status_code, media_type=media_type)


def _forbidden(project: str, kind: str) -> JSONResponse:
    return _error(403, f"missing 'read' permission in '{project}' project for '{kind}' kind")


def _datasource(ds: Datasource) -> dict[str, Any]:
    proxy = {"kind": "HTTPProxy", "spec": {"url": ds.url}}
    spec = {"default": False, "plugin": {"kind": "PrometheusDatasource", "spec": {"proxy": proxy}}}
    kind = "GlobalDatasource" if ds.project is None else "Datasource"
    return {"kind": kind, "metadata": _metadata(ds.name, ds.project), "spec": spec}


def _dashboard(db: Dashboard) -> dict[str, Any]:
    datasource = {"kind": "PrometheusDatasource", "name": db.datasource}
    panels: dict[str, Any] = {}
    items = []
    for index, (title, promql) in enumerate(db.panels.items()):
        key = f"panel{index}"
        query = {
            "kind": "PrometheusTimeSeriesQuery",
            "spec": {"query": promql, "datasource": datasource},
        }
        panels[key] = {
            "kind": "Panel",
            "spec": {
                "display": {"name": title},
                "plugin": {"kind": "TimeSeriesChart", "spec": {}},
                "queries": [{"kind": "TimeSeriesQuery", "spec": {"plugin": query}}],
            },
        }
        items.append(
            {
                "x": 0,
                "y": 6 * index,
                "width": 24,
                "height": 6,
                "content": {"$ref": f"#/spec/panels/{key}"},
            }
        )
    spec = {
        "display": {"name": db.name},
        "duration": "1h",
        "variables": [],
        "panels": panels,
        "layouts": [{"kind": "Grid", "spec": {"items": items}}],
    }
    return {"kind": "Dashboard", "metadata": _metadata(db.name, db.project), "spec": spec}
