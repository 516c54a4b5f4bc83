"""The models a model server serves, as the API asks for them: cached, one lookup at a time.

Submissions, `/api/v1/models` and `/readyz` all ask. A hanging server costs each caller at most
one lookup's deadline (never a queue of them), and then nothing while its failure is cached.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from persai.errors import ModelUnavailable

__all__ = ["MODELS_FAILURE_S", "MODELS_FRESH_S", "MODELS_TIMEOUT_S", "ModelCatalog"]

MODELS_FRESH_S = 30.0
"""How long a list of models is used before it is asked for again."""
MODELS_FAILURE_S = 5.0
"""How long a failed lookup of the models (or an empty list) is answered from the cache."""
MODELS_TIMEOUT_S = 5.0
"""The deadline of one lookup of the models."""


class ModelCatalog:
    """The models a stack serves, from `lookup`, shared by every caller of one process.

    A list is kept `fresh_s` seconds; a failure (or an empty list, as while a stack starts) is
    kept `failure_s` seconds and raised again at once. Concurrent callers share one lookup
    (single flight) and each lookup has its own deadline, `timeout_s`: a caller waits at most
    for the rest of the lookup in flight, never for a queue of them. A caller that is cancelled
    (its client left) leaves the lookup running for the others.
    """

    def __init__(
        self,
        lookup: Callable[[], Awaitable[list[str]]],
        *,
        fresh_s: float = MODELS_FRESH_S,
        failure_s: float = MODELS_FAILURE_S,
        timeout_s: float = MODELS_TIMEOUT_S,
    ) -> None:
        self._lookup = lookup
        self.fresh_s, self.failure_s, self.timeout_s = fresh_s, failure_s, timeout_s
        self._models: list[str] = []
        self._failure: str | None = None
        self._until = float("-inf")  # the event loop's time at which the cached answer expires
        self._flight: asyncio.Task[list[str]] | None = None

    async def models(self) -> list[str]:
        """The served models' ids; ModelUnavailable when the stack could not list them."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._until:
            if self._failure is not None:
                raise ModelUnavailable(self._failure, retry_after_s=self._retry_after_s())
            return list(self._models)
        if self._flight is None:
            self._flight = loop.create_task(self._look_up())
        return list(await asyncio.shield(self._flight))

    async def _look_up(self) -> list[str]:
        try:
            async with asyncio.timeout(self.timeout_s):
                models = await self._lookup()
        except TimeoutError as exc:
            failure = f"Llama Stack did not list its models within {self.timeout_s:g} s"
            self._keep([], failure, self.failure_s)
            raise ModelUnavailable(failure, retry_after_s=self._retry_after_s()) from exc
        except ModelUnavailable as exc:
            self._keep([], exc.message, self.failure_s)
            raise ModelUnavailable(exc.message, retry_after_s=self._retry_after_s()) from exc
        finally:
            self._flight = None
        self._keep(models, None, self.fresh_s if models else self.failure_s)
        return models

    def _keep(self, models: list[str], failure: str | None, for_s: float) -> None:
        self._models, self._failure = models, failure
        self._until = asyncio.get_running_loop().time() + for_s

    def _retry_after_s(self) -> int:
        """Whole seconds until the cached failure expires (a 503's Retry-After)."""
        return max(1, math.ceil(self._until - asyncio.get_running_loop().time()))
