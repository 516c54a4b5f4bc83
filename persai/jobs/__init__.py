"""Investigations as jobs: their records, event streams and conversations in Redis."""

from persai.errors import Superseded
from persai.jobs.conversations import Conversation, ConversationStore
from persai.jobs.models import (
    AlertRef,
    Event,
    EventName,
    Evidence,
    Job,
    JobStatus,
    Step,
    StepStatus,
    TimeRange,
    Usage,
    utcnow,
)
from persai.jobs.store import JobStore, redis_errors
from persai.jobs.sweep import LostJobSweep

__all__ = [
    "AlertRef",
    "Conversation",
    "ConversationStore",
    "Event",
    "EventName",
    "Evidence",
    "Job",
    "JobStatus",
    "JobStore",
    "LostJobSweep",
    "Step",
    "StepStatus",
    "Superseded",
    "TimeRange",
    "Usage",
    "redis_errors",
    "utcnow",
]
