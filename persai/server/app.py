"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from persai import heap
from persai.agent.llama import ModelGateway
from persai.alerts import load as load_alerts
from persai.config import Settings
from persai.credentials import Sealer, cookieless_jar
from persai.errors import install
from persai.jobs import ConversationStore, JobStore
from persai.logging import setup_logging
from persai.queue import Publisher, create_celery
from persai.redis_client import connect_to
from persai.server import alerts, compat, dashboard, investigations, ops
from persai.server.auth import Authenticator
from persai.server.middleware import RequestContext
from persai.server.state import AppState, ModelDirectory
from persai.server.stream_slots import StreamSlots
from persai.server.streams import EventHub
from persai.server.token_validator import TokenValidator
from persai.version import __version__

MAX_BODY_BYTES = 256 * 1024
API_REDIS_CONNECTIONS = 32
"""Commands of one API process in flight at once (past it they wait for a connection); event
streams add one connection however many jobs they follow (`fanout.Pump`)."""


def create_app(
    settings: Settings,
    *,
    redis: aioredis.Redis | None = None,
    http: httpx.AsyncClient | None = None,
    gateway: ModelDirectory | None = None,
    queue: Publisher | None = None,
) -> FastAPI:
    """The API; what it talks to is opened in its lifespan and closed there, unless passed in
    (a test's Redis client, a gateway to a stand-in): the caller then owns and closes it."""
    if redis is None:
        settings.required_redis_url()  # ValueError, saying what to set, when there is none
    given = _Given(redis, http, gateway, queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as opened:
            app.state.persai = _open_state(settings, given, opened)
            heap.settle()
            yield

    app = FastAPI(
        title="PersAI",
        version=__version__,
        summary="The AI back end of Perses: asynchronous investigations of your metrics.",
        lifespan=lifespan,
    )
    install(app)
    app.include_router(investigations.router)
    app.include_router(dashboard.router)
    app.include_router(ops.router)
    app.include_router(compat.router)
    alerts.install(
        app, settings, load_alerts(settings.alerts_config) if settings.alerts_config else None
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins(),
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.add_middleware(RequestContext, max_body_bytes=MAX_BODY_BYTES)
    return app


def from_environment() -> FastAPI:
    """The app, configured from the environment (for `uvicorn --factory`)."""
    settings = Settings()
    setup_logging(settings.log_level, settings.log_format)
    return create_app(settings)


@dataclass(frozen=True)
class _Given:
    """The collaborators passed to `create_app`, if any."""

    redis: aioredis.Redis | None
    http: httpx.AsyncClient | None
    gateway: ModelDirectory | None
    queue: Publisher | None


def _open_state(settings: Settings, given: _Given, opened: AsyncExitStack) -> AppState:
    """The app's state; what it opens is closed by `opened`, last opened first."""
    redis = given.redis
    if redis is None:
        redis = connect_to(settings, patience_s=0.5, max_connections=API_REDIS_CONNECTIONS)
        opened.push_async_callback(redis.aclose)
    http = given.http
    if http is None:
        # no cookies kept: Perses prefers cookies to the bearer token of the user at hand
        http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0), cookies=cookieless_jar())
        opened.push_async_callback(http.aclose)
    gateway = given.gateway
    if gateway is None:
        owned = ModelGateway(settings.llama_stack_url or "", timeout_s=10.0)
        opened.push_async_callback(owned.aclose)
        gateway = owned
    queue = given.queue or Publisher(create_celery(settings, settings.required_redis_url()))
    validator = None
    if settings.auth and settings.perses_api_url is not None:
        assert settings.secret_key is not None  # required with authentication (Settings)
        validator = TokenValidator(
            redis,
            http,
            str(settings.perses_api_url),
            cache_ttl_s=settings.auth_cache_ttl_s,
            sealer=Sealer(settings.secret_key),
        )
    store = JobStore(redis, retention_s=settings.job_retention_s)
    events = EventHub(store, StreamSlots(redis, per_user=settings.streams_per_user), redis)
    opened.push_async_callback(events.close)
    return AppState(
        settings=settings,
        redis=redis,
        store=store,
        events=events,
        conversations=ConversationStore(
            redis,
            retention_s=settings.conversation_retention_s,
            per_owner=settings.conversations_per_user,
        ),
        queue=queue,
        http=http,
        gateway=gateway,
        authenticator=Authenticator(settings, validator),
        sealer=Sealer(settings.secret_key) if settings.auth and settings.secret_key else None,
    )
