"""What the API process holds open for its lifetime: opened in the lifespan, closed there."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import httpx
import redis.asyncio as aioredis

from persai.config import Settings
from persai.credentials import Sealer
from persai.jobs import ConversationStore, JobStore
from persai.jobs.submission import Submissions
from persai.jobs.turns import TurnClaims
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
    submissions: Submissions = field(init=False)
    """Questions admitted and queued (built from the parts above)."""
    turns: TurnClaims = field(init=False)
    """The plugin's turns, claimed so that a retried one re-attaches (built from `redis`)."""

    def __post_init__(self) -> None:
        self.submissions = Submissions(
            self.redis,
            self.settings,
            store=self.store,
            conversations=self.conversations,
            queue=self.queue,
            sealer=self.sealer,
            models=self.models,
        )
        self.turns = TurnClaims(self.redis, self.store)

    async def models(self) -> list[str]:
        """The models Llama Stack serves: cached, one lookup at a time, a failure cached
        briefly (`ModelCatalog`), so a hanging stack holds no request up for long."""
        return await self.gateway.models()
