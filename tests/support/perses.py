"""A Perses 0.54 stand-in for tests: what PersAI meets in a real Perses, read from its source.

No Perses server can be installed here, so this one copies the behaviour of perses/perses at
v0.54.0 (and of the Prometheus datasource editor of perses/plugins at prometheus/v0.58.0, the
plugin that Perses 0.54 ships), each behaviour beside the file it follows:

- HS512 tokens with Perses's claims, the three session cookies and their lifetimes, login,
  refresh, the JWT middleware's answers (internal/api/crypto/jwt.go, internal/api/impl/auth/,
  internal/api/authorization/native/native.go, echo-jwt v4.4.0);
- `whoami` (from 0.53 on: internal/api/impl/v1/user/endpoint.go), `health`;
- project, datasource and dashboard lists, `metadata_only`, the project filter
  (internal/api/toolbox/list.go), the check that a project exists
  (internal/api/core/middleware/verification.go);
- the datasource proxy for global, project and dashboard-local datasources, with their
  permissions, `allowedEndpoints` and errors (internal/api/impl/proxy/*.go);
- `api_prefix`: every route under it, anything else redirected into it
  (internal/api/core/server.go, internal/api/core/middleware/apiprefix.go);
- Kubernetes (delegated) authentication, which registers no refresh route (auth.go).

Errors are `{"message": ...}` with the base text Perses puts in front of each kind
(internal/api/interface/error.go): "forbidden access: ", "document not found: ", "bad request: ".

    perses = PersesStandin(access_ttl_s=5, api_prefix="/perses")
    perses.add_user("alice", "secret", projects={"shop"})
    perses.add_datasource("prom", prometheus_url, project="shop")  # as the Perses UI saves it
    base_url = perses.start()             # http://127.0.0.1:PORT/perses
    perses.count("refresh")               # calls answered by POST /api/auth/refresh
    perses.stop()                         # connection refused until start() again (same port)
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from persai.launcher import ThreadedServer, free_port, serve_in_thread

ALGORITHM = "HS512"
COOKIE_PAYLOAD = "jwtPayload"
COOKIE_SIGNATURE = "jwtSignature"
COOKIE_REFRESH = "jwtRefreshToken"
_TIMESTAMP = "2025-01-01T00:00:00Z"
VERSION = "0.54.0"

UI_ALLOWED_ENDPOINTS: tuple[tuple[str, str], ...] = (
    # What the Prometheus datasource editor of the Perses UI saves for a new datasource
    # (perses/plugins prometheus/src/plugins/PrometheusDatasourceEditor.tsx, initialSpecProxy),
    # as (endpointPattern, method), in its order.
    ("/api/v1/labels", "POST"),
    ("/api/v1/series", "POST"),
    ("/api/v1/metadata", "GET"),
    ("/api/v1/query", "POST"),
    ("/api/v1/query_range", "POST"),
    ("/api/v1/label/([a-zA-Z0-9_-]+)/values", "GET"),
    ("/api/v1/parse_query", "POST"),
)

Handler = Callable[[Request], Awaitable[Response]]
UserHandler = Callable[[Request, "User"], Awaitable[Response]]


@dataclass
class User:
    name: str
    password: str
    projects: set[str] = field(default_factory=set)
    """Projects the user may read (the project itself, its datasources and dashboards), as a
    RoleBinding would grant; `"*"` means all (a GlobalRole)."""
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
    allowed_endpoints: tuple[tuple[str, str], ...] | None = UI_ALLOWED_ENDPOINTS
    """`spec.plugin.spec.proxy.spec.allowedEndpoints` as (pattern, method); None for a
    datasource saved without the list (through the API), which the proxy does not restrict."""

    def spec(self) -> dict[str, Any]:
        """The datasource's `spec`, as Perses stores it (a dashboard's own datasources too)."""
        proxy: dict[str, Any] = {"url": self.url}
        if self.allowed_endpoints is not None:
            proxy["allowedEndpoints"] = [
                {"endpointPattern": pattern, "method": method}
                for pattern, method in self.allowed_endpoints
            ]
        plugin = {
            "kind": "PrometheusDatasource",
            "spec": {"proxy": {"kind": "HTTPProxy", "spec": proxy}},
        }
        return {"default": False, "plugin": plugin}


@dataclass
class Dashboard:
    project: str
    name: str
    datasource: str
    panels: dict[str, str]
    """Panel title -> PromQL, each drawn as a TimeSeriesChart."""
    datasources: dict[str, Datasource] = field(default_factory=dict)
    """The dashboard's own datasources (`spec.datasources`), by name."""


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
    # echo's DefaultHTTPErrorHandler: {"message": "..."}
    return JSONResponse({"message": message}, status_code=status)


def _not_found(name: str) -> JSONResponse:
    # proxy/globaldatasource.go, projectdatasource.go, localdatasource.go (the same text for a
    # missing dashboard and a missing datasource)
    return _error(
        404,
        f'document not found: unable to forward the request to the datasource "{name}", '
        "datasource doesn't exist",
    )


def _forbidden(project: str | None, kind: str) -> JSONResponse:
    # proxy.go checkPermission, and the same text from the resource endpoints
    if project is None:
        return _error(403, f"forbidden access: missing 'read' global permission for '{kind}' kind")
    return _error(
        403, f"forbidden access: missing 'read' permission in '{project}' project for '{kind}' kind"
    )


def _metadata(name: str, project: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "createdAt": _TIMESTAMP, "updatedAt": _TIMESTAMP}
    if project is not None:
        meta["project"] = project
    meta["version"] = 0
    return meta


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


class PersesStandin:
    """Perses on a free loopback port, served by uvicorn in a background thread.

    `api_prefix` serves everything under a path (Perses's `api_prefix`); `version` below 0.53
    serves no whoami; `kubernetes_auth` has no refresh route (delegated authentication).
    """

    def __init__(
        self,
        *,
        access_ttl_s: int = 900,
        refresh_ttl_s: int = 86_400,
        api_prefix: str = "",
        version: str = VERSION,
        kubernetes_auth: bool = False,
    ) -> None:
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.api_prefix = api_prefix.rstrip("/")
        self.version = version
        self.kubernetes_auth = kubernetes_auth
        self.access_key = secrets.token_bytes(64)
        self.refresh_key = secrets.token_bytes(64)
        self.users: dict[str, User] = {}
        self.projects: set[str] = set()
        self.datasources: list[Datasource] = []
        self.dashboards: list[Dashboard] = []
        self.fail_status: int | None = None
        """When set, every route answers this status (e.g. 503) instead of working."""
        self.forwarded: list[tuple[str, str]] = []
        """(method, path after the datasource) of every request the proxy forwarded."""
        self._calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._port: int | None = None
        self._server: ThreadedServer | None = None
        self._http: httpx.AsyncClient | None = None
        self.app = Starlette(routes=self._routes(), lifespan=self._lifespan)

    # Configuration -----------------------------------------------------------------------

    def add_user(
        self, name: str, password: str, *, projects: set[str] | None = None, global_ds: bool = True
    ) -> User:
        user = User(name, password, set(projects or ()), global_ds)
        self.users[name] = user
        return user

    def add_project(self, name: str) -> None:
        self.projects.add(name)

    def add_datasource(
        self,
        name: str,
        url: str,
        *,
        project: str | None = None,
        allowed_endpoints: Sequence[tuple[str, str]] | None = UI_ALLOWED_ENDPOINTS,
    ) -> Datasource:
        """A datasource as the Perses UI saves it (with the editor's allowedEndpoints), or with
        `allowed_endpoints=None` as one saved through the API without the list."""
        allowed = tuple(allowed_endpoints) if allowed_endpoints is not None else None
        datasource = Datasource(name, url.rstrip("/"), project, allowed)
        self.datasources.append(datasource)
        if project is not None:
            self.projects.add(project)
        return datasource

    def add_dashboard(
        self,
        project: str,
        name: str,
        *,
        datasource: str,
        panels: dict[str, str],
        local_datasources: dict[str, str] | None = None,
    ) -> Dashboard:
        """A dashboard whose panels query `datasource`; `local_datasources` (name -> URL) are
        the dashboard's own (`spec.datasources`), saved as the UI saves a datasource."""
        local = {
            ds: Datasource(ds, url.rstrip("/"), project)
            for ds, url in (local_datasources or {}).items()
        }
        dashboard = Dashboard(project, name, datasource, dict(panels), local)
        self.dashboards.append(dashboard)
        self.projects.add(project)
        return dashboard

    # Tokens ------------------------------------------------------------------------------

    def sign(self, claims: dict[str, Any], *, refresh: bool = False) -> str:
        """Sign any claims with this Perses's key (for tests that need odd tokens)."""
        key = self.refresh_key if refresh else self.access_key
        return jwt.encode(claims, key, algorithm=ALGORITHM)

    def issue_tokens(self, user: str, *, access_ttl_s: int | None = None) -> Tokens:
        """What a native login returns, without an HTTP call (not counted); a negative
        `access_ttl_s` gives an access token that has already expired."""
        return Tokens(
            self._token(user, self.access_ttl_s if access_ttl_s is None else access_ttl_s),
            self._token(user, self.refresh_ttl_s, refresh=True),
        )

    def user_of(self, access_token: str) -> str | None:
        """Whom a valid access token of this Perses names (None: invalid or expired)."""
        claims = self._claims(access_token, refresh=False)
        return str(claims["sub"]) if claims else None

    def _token(self, user: str, ttl_s: int, *, refresh: bool = False) -> str:
        # crypto/jwt.go: sub, exp, nbf and the provider info (pkd, pid); no iat
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
        """Where Perses is served: PERSES_API_URL, its api_prefix included."""
        if self._port is None:
            raise RuntimeError("the Perses stand-in was never started")
        return f"http://127.0.0.1:{self._port}{self.api_prefix}"

    def start(self) -> str:
        """Serve (again) on this stand-in's port; returns the base URL."""
        if self._port is None:
            self._port = free_port()
        self._server = serve_in_thread(
            self.app,
            port=self._port,
            name="perses-standin",
            log_level="warning",
            lifespan="on",
            http="h11",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        return self.base_url

    def stop(self) -> None:
        """Stop serving: connections to the port are refused until `start()`."""
        if self._server is not None:
            self._server.stop()
        self._server = None

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

    def _routes(self) -> list[BaseRoute]:
        project = "/api/v1/projects/{project}"
        authed: list[tuple[str, str, UserHandler]] = [
            ("/api/v1/projects", "projects", self._projects),
            ("/api/v1/globaldatasources", "globaldatasources", self._globals),
            (f"{project}/datasources", "datasources", self._project_datasources),
            (f"{project}/dashboards", "dashboards", self._dashboards),
            (f"{project}/dashboards/{{dashboard}}", "dashboard", self._dashboard),
        ]
        if _version_tuple(self.version) >= (0, 53):  # whoami appeared in Perses 0.53
            authed.append(("/api/v1/user/whoami", "whoami", self._whoami))
        # proxy.go CollectRoutes: every method, with a path after the datasource or without
        proxies = [
            f"{base}{tail}"
            for base in (
                "/proxy/globaldatasources/{name}",
                "/proxy/projects/{project}/datasources/{name}",
                "/proxy/projects/{project}/dashboards/{dashboard}/datasources/{name}",
            )
            for tail in ("/{path:path}", "")
        ]
        methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
        routes: list[BaseRoute] = [
            Route("/api/v1/health", self._health),
            *(Route(path, self._authed(name, handler)) for path, name, handler in authed),
            *(Route(p, self._authed("proxy", self._proxy), methods=methods) for p in proxies),
        ]
        if not self.kubernetes_auth:
            # auth.go: the native provider's login; no refresh route under delegated authn
            login = self._counted("login", self._login)
            refresh = self._counted("refresh", self._refresh)
            routes += [
                Route("/api/auth/providers/native/login", login, methods=["POST"]),
                Route("/api/auth/refresh", refresh, methods=["POST"]),
            ]
        if not self.api_prefix:
            return routes
        # server.go mounts every group under the prefix; middleware/apiprefix.go redirects
        # the rest into it (302, the query string dropped)
        into = Route("/{path:path}", self._into_prefix, methods=methods)
        return [Mount(self.api_prefix, routes=routes), into]

    async def _into_prefix(self, request: Request) -> Response:
        return RedirectResponse(self.api_prefix + request.url.path, status_code=302)

    def _counted(self, name: str, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            with self._lock:
                self._calls[name] += 1
            if self.fail_status is not None:
                return _error(self.fail_status, "the Perses stand-in is failing on purpose")
            return await handler(request)

        return endpoint

    def _authed(self, name: str, handler: UserHandler) -> Handler:
        async def endpoint(request: Request) -> Response:
            project = request.path_params.get("project")
            if project is not None and project not in self.projects:
                # middleware/verification.go CheckProject runs before the JWT middleware
                return _error(400, f'bad request: metadata.project "{project}" doesn\'t exist')
            token = self._request_token(request)
            if token is None:  # echo-jwt v4.4.0 ErrJWTMissing
                return _error(401, "missing or malformed jwt")
            claims = self._claims(token, refresh=False)
            user = self.users.get(str(claims.get("sub"))) if claims else None
            if user is None:  # echo-jwt v4.4.0 ErrJWTInvalid
                return _error(401, "invalid or expired jwt")
            return await handler(request, user)

        return self._counted(name, endpoint)

    @staticmethod
    def _request_token(request: Request) -> str | None:
        # authorization/native/native.go BeforeFunc: the two access-token cookies, when both
        # are there, become the Authorization header, replacing what the client sent.
        payload = request.cookies.get(COOKIE_PAYLOAD)
        signature = request.cookies.get(COOKIE_SIGNATURE)
        if payload is not None and signature is not None:
            return f"{payload}.{signature}"
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():  # echo-jwt: prefix case-insensitive
            return None
        return token.strip()

    def _with_cookies(self, body: dict[str, Any], tokens: Tokens, *, refresh: bool) -> Response:
        # crypto/jwt.go: the access cookies live as long as the longer of the two lifetimes
        # (MaxAge) though they expire with the access token (Expires); Path=/, no Domain;
        # Secure and SameSite from security.cookie, by default not Secure and Lax.
        response = JSONResponse(body)
        cookies = tokens.cookies
        lifetime = max(self.access_ttl_s, self.refresh_ttl_s)
        names = [COOKIE_PAYLOAD, COOKIE_SIGNATURE] + ([COOKIE_REFRESH] if refresh else [])
        for name in names:
            refreshing = name == COOKIE_REFRESH
            response.set_cookie(
                name,
                cookies[name],
                max_age=self.refresh_ttl_s if refreshing else lifetime,
                expires=self.refresh_ttl_s if refreshing else self.access_ttl_s,
                path="/",
                secure=False,
                httponly=name != COOKIE_PAYLOAD,
                samesite="lax",
            )
        return response

    async def _login(self, request: Request) -> Response:
        # impl/auth/native.go: a wrong login or password is a 400
        try:
            body = await request.json()
            login, password = str(body["login"]), str(body["password"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "bad request: login cannot be empty")
        user = self.users.get(login)
        if user is None or not secrets.compare_digest(user.password, password):
            return _error(400, "bad request: wrong login or password ")
        tokens = self.issue_tokens(login)
        body = {
            "access_token": tokens.access_token,
            "token_type": "Bearer",
            "refresh_token": tokens.refresh_token,
            "expiry": "0001-01-01T00:00:00Z",
        }
        return self._with_cookies(body, tokens, refresh=True)

    async def _refresh(self, request: Request) -> Response:
        # impl/auth/auth.go refresh: the refresh-token cookie first, else the JSON body; the
        # same refresh token back, and only the access cookies set again
        token = request.cookies.get(COOKIE_REFRESH)
        if token is None:
            try:
                token = str((await request.json()).get("refresh_token") or "")
            except (ValueError, AttributeError):
                token = ""
        if not token:
            return _error(400, "bad request: no refresh token has been found")
        claims = self._claims(token, refresh=True)
        if claims is None:
            return _error(400, "bad request: token has invalid claims: token is expired")
        access = self._token(str(claims["sub"]), self.access_ttl_s)
        body = {
            "access_token": access,
            "token_type": "Bearer",
            "refresh_token": token,
            "expiry": "0001-01-01T00:00:00Z",
            "expires_in": self.access_ttl_s,
        }
        return self._with_cookies(body, Tokens(access, token), refresh=False)

    async def _health(self, _request: Request) -> Response:
        # impl/v1/health/endpoint.go (anonymous)
        return JSONResponse(
            {"buildTime": _TIMESTAMP, "version": self.version, "commit": "", "database": True}
        )

    async def _whoami(self, _request: Request, user: User) -> Response:
        # impl/v1/user/endpoint.go WhoAmI: the user as PublicUser
        spec = {"nativeProvider": {}}
        return JSONResponse({"kind": "User", "metadata": _metadata(user.name), "spec": spec})

    async def _projects(self, request: Request, user: User) -> Response:
        # toolbox/list.go: only the projects where the user may read the Project
        listed = [
            {"kind": "Project", "metadata": _metadata(p), "spec": {"display": {"name": p}}}
            for p in sorted(self.projects)
            if user.can_read(p)
        ]
        return JSONResponse(_metadata_only(request, listed))

    async def _globals(self, _request: Request, user: User) -> Response:
        # datasources ignore metadata_only (interface/v1/globaldatasource/interface.go)
        if not user.can_read(None):
            return _forbidden(None, "GlobalDatasource")
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
        listed = [_dashboard(db) for db in self.dashboards if db.project == project]
        return JSONResponse(_metadata_only(request, listed))

    async def _dashboard(self, request: Request, user: User) -> Response:
        project, name = request.path_params["project"], request.path_params["dashboard"]
        if not user.can_read(project):
            return _forbidden(project, "Dashboard")
        for dashboard in self.dashboards:
            if (dashboard.project, dashboard.name) == (project, name):
                return JSONResponse(_dashboard(dashboard))
        return _error(404, "document not found")

    def _target(self, params: dict[str, Any]) -> Datasource | None:
        project, name = params.get("project"), params["name"]
        if "dashboard" in params:  # localdatasource.go: the dashboard's spec.datasources[name]
            for dashboard in self.dashboards:
                if (dashboard.project, dashboard.name) == (project, params["dashboard"]):
                    return dashboard.datasources.get(name)
            return None
        return next(
            (ds for ds in self.datasources if (ds.project, ds.name) == (project, name)), None
        )

    async def _proxy(self, request: Request, user: User) -> Response:
        params = request.path_params
        project: str | None = params.get("project")
        # proxy checkPermission: read GlobalDatasource, else read Datasource in the project
        # (for a dashboard's own datasources too)
        if not user.can_read(project):
            return _forbidden(project, "GlobalDatasource" if project is None else "Datasource")
        target = self._target(params)
        if target is None:
            return _not_found(params["name"])
        path = "/" + params.get("path", "").lstrip("/")
        if not _allowed(target, request.method, path):
            # proxy.go httpProxy.serve: the method must equal, the pattern be found in the path
            # after the datasource (unanchored, no query string)
            return _error(
                403,
                f"forbidden access: you are not allowed to use this endpoint {json.dumps(path)} "
                f"with the HTTP method {request.method}",
            )
        with self._lock:
            self.forwarded.append((request.method, path))
        return await self._forward(request, target.url + path)

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
            # proxy.go: the reverse proxy's error with the status it had, 500 when below 400
            return _error(500, f"{type(exc).__name__}: {exc}")
        media_type = upstream.headers.get("content-type")
        return Response(upstream.content, status_code=upstream.status_code, media_type=media_type)


def _allowed(datasource: Datasource, method: str, path: str) -> bool:
    if not datasource.allowed_endpoints:  # no list: every endpoint
        return True
    return any(
        method == allowed and re.search(pattern, path)
        for pattern, allowed in datasource.allowed_endpoints
    )


def _metadata_only(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # toolbox/list.go metadataOrFullList, database.go RawMetadataQuery: an empty spec
    if request.query_params.get("metadata_only") != "true":
        return items
    return [{"kind": item["kind"], "metadata": item["metadata"], "spec": {}} for item in items]


def _datasource(ds: Datasource) -> dict[str, Any]:
    kind = "GlobalDatasource" if ds.project is None else "Datasource"
    return {"kind": kind, "metadata": _metadata(ds.name, ds.project), "spec": ds.spec()}


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
    spec: dict[str, Any] = {
        "display": {"name": db.name},
        "duration": "1h",
        "variables": [],
        "panels": panels,
        "layouts": [{"kind": "Grid", "spec": {"items": items}}],
    }
    if db.datasources:
        spec["datasources"] = {name: ds.spec() for name, ds in db.datasources.items()}
    return {"kind": "Dashboard", "metadata": _metadata(db.name, db.project), "spec": spec}
