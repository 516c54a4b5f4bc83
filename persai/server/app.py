"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from persai import heap
from persai.agent.llama import ModelGateway
from persai.config import Settings
from persai.credentials import Sealer, cookieless_jar
from persai.errors import install
from persai.jobs import ConversationStore, JobStore
from persai.logging import setup_logging
from persai.queue import Publisher, create_celery
from persai.redis_client import connect
from persai.server import compat, investigations, ops
from persai.server.auth import Authenticator
from persai.server.middleware import RequestContext
from persai.server.state import AppState
from persai.server.stream_slots import StreamSlots
from persai.server.streams import EventHub
from persai.server.token_validator import TokenValidator
from persai.version import __version__

MAX_BODY_BYTES = 256 * 1024
API_REDIS_CONNECTIONS = 2000
"""Event streams share one reader per job, but each followed job holds a connection."""


def create_app(settings: Settings) -> FastAPI:
    """The API; clients and pools are opened in its lifespan and closed there."""
    redis_url = settings.required_redis_url()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = _open_state(settings, redis_url)
        app.state.persai = state
        heap.settle()
        try:
            yield
        finally:
            await state.events.close()
            await state.gateway.aclose()
            await state.http.aclose()
            await state.redis.aclose()

    app = FastAPI(
        title="PersAI",
        version=__version__,
        summary="The AI back end of Perses: asynchronous investigations of your metrics.",
        lifespan=lifespan,
    )
    install(app)
    app.include_router(investigations.router)
    app.include_router(ops.router)
    app.include_router(compat.router)
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


def _open_state(settings: Settings, redis_url: str) -> AppState:
    redis = connect(redis_url, patience_s=0.5, max_connections=API_REDIS_CONNECTIONS)
    # no cookies kept: Perses prefers cookies to the bearer token of the user at hand
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0), cookies=cookieless_jar())
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
    return AppState(
        settings=settings,
        redis=redis,
        store=store,
        events=EventHub(store, StreamSlots(redis, per_user=settings.streams_per_user)),
        conversations=ConversationStore(
            redis,
            retention_s=settings.conversation_retention_s,
            per_owner=settings.conversations_per_user,
        ),
        queue=Publisher(create_celery(settings, redis_url)),
        http=http,
        gateway=ModelGateway(settings.llama_stack_url or "", timeout_s=10.0),
        authenticator=Authenticator(settings, validator),
        sealer=Sealer(settings.secret_key) if settings.auth and settings.secret_key else None,
    )
