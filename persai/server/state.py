"""What the API process holds open for its lifetime: opened in the lifespan, closed there."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
import redis.asyncio as aioredis

from persai.agent.llama import ModelGateway
from persai.config import Settings
from persai.credentials import Sealer
from persai.jobs import ConversationStore, JobStore
from persai.queue import Publisher
from persai.server.auth import Authenticator
from persai.server.streams import EventHub

MODELS_CACHE_S = 30.0


@dataclass
class AppState:
    settings: Settings
    redis: aioredis.Redis
    store: JobStore
    conversations: ConversationStore
    queue: Publisher
    http: httpx.AsyncClient
    gateway: ModelGateway
    authenticator: Authenticator
    sealer: Sealer | None
    events: EventHub
    _models: tuple[float, list[str]] = field(default=(0.0, []))
    _models_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def models(self) -> list[str]:
        """The models Llama Stack serves, asked at most every MODELS_CACHE_S seconds."""
        async with self._models_lock:
            fetched_at, models = self._models
            if time.monotonic() - fetched_at > MODELS_CACHE_S or not models:
                models = await self.gateway.list_models()
                self._models = (time.monotonic(), models)
            return models
