"""What the API process holds open for its lifetime: opened in the lifespan, closed there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx
import redis.asyncio as aioredis

from persai.config import Settings
from persai.credentials import Sealer
from persai.jobs import ConversationStore, JobStore
from persai.queue import Publisher
from persai.server.auth import Authenticator
from persai.server.streams import EventHub


class ModelDirectory(Protocol):
    """The models a model server serves (`ModelGateway`, or a scripted one in tests)."""

    async def models(self) -> list[str]: ...


@dataclass
class AppState:
    settings: Settings
    redis: aioredis.Redis
    store: JobStore
    conversations: ConversationStore
    queue: Publisher
    http: httpx.AsyncClient
    gateway: ModelDirectory
    authenticator: Authenticator
    sealer: Sealer | None
    events: EventHub

    async def models(self) -> list[str]:
        """The models Llama Stack serves: cached, one lookup at a time, a failure cached
        briefly (`ModelCatalog`), so a hanging stack holds no request up for long."""
        return await self.gateway.models()
