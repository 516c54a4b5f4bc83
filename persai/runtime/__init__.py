"""The worker's runtime: one asyncio loop per process carrying every investigation it runs."""

from persai.runtime.engine import Engine
from persai.runtime.runner import JobRunner, Services

__all__ = ["Engine", "JobRunner", "Services"]
