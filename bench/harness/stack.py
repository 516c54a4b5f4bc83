"""PersAI as the benchmarks run it: its environment, a Perses stand-in for authentication, the
workers, and reading a job's events back from Redis.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
import redis
import redis.asyncio as aioredis

from bench.harness.processes import Cluster
from persai.agent.scripted import MODEL, Script
from persai.config import Settings
from persai.jobs import ConversationStore, Job, JobStore, keys
from persai.launcher import Child
from persai.queue import INVESTIGATE, create_celery
from tests.support.perses import PersesStandin

DATASOURCE = "/proxy/globaldatasources/prom"
NO_DATASOURCE_URL = "http://127.0.0.1:9"
"""For runs without tool calls: a datasource must be configured, it is never queried."""
USER = "alice"
RETENTION_S = 3600
TERMINAL = ("succeeded", "failed", "cancelled")
LOST_DONE_S = 10.0


@dataclass
class Perses:
    """The Perses stand-in (in this process) and a signed-in user's cookies."""

    standin: PersesStandin
    cookies: dict[str, str]
    bearer: str

    @classmethod
    def start(cls) -> Perses:
        standin = PersesStandin()
        standin.add_user(USER, secrets.token_hex(8), projects={"*"})
        standin.start()
        tokens = standin.issue_tokens(USER)
        return cls(standin, tokens.cookies, tokens.access_token)

    def env(self) -> dict[str, str]:
        """What turns authentication on against this Perses."""
        return {
            "PERSAI_AUTH": "true",
            "PERSES_API_URL": self.standin.base_url,
            "PERSAI_SECRET_KEY": secrets.token_urlsafe(32),
        }

    def calls(self) -> dict[str, int]:
        """Token checks Perses answered: refreshes (cookie clients) and whoami (bearer clients)."""
        return {name: self.standin.count(name) for name in ("refresh", "whoami")}

    def stop(self) -> None:
        self.standin.stop()


def persai_env(
    redis_url: str,
    *,
    datasource_url: str = NO_DATASOURCE_URL,
    model: str = MODEL,
    log_level: str = "INFO",
    **extra: str,
) -> dict[str, str]:
    """The environment of PersAI's processes: authentication off unless `extra` turns it on.

    The per-user admission limits are lifted: one benchmark user submits hundreds at once.
    """
    return {
        "PERSAI_REDIS_URL": redis_url,
        "PERSAI_MAX_RUNNING_PER_USER": "1000000",
        "PERSAI_SUBMISSIONS_PER_MINUTE": "1000000",
        "PERSAI_MAX_QUEUE_DEPTH": "1000000",
        "PERSAI_STREAMS_PER_USER": "1000000",
        "PERSAI_CONVERSATIONS_PER_USER": "1000000",
        "PERSAI_MODEL": model,
        "PERSAI_AUTH": "false",
        "PERSAI_DATASOURCES": f"prom={datasource_url}",
        "PERSAI_LOG_LEVEL": log_level,
        **extra,
    }


def scripted_worker(
    cluster: Cluster,
    env: dict[str, str],
    script: Script,
    *,
    concurrency: int | None = None,
    name: str = "worker",
) -> Child:
    """A PersAI worker process whose model answers by `script` inside it."""
    args = ["--script", script.to_json()]
    if concurrency is not None:
        args += ["--concurrency", str(concurrency)]
    return cluster.module(name, "bench.harness.fake_worker", args, env)


@dataclass(frozen=True)
class Finished:
    """A job's end as its stream recorded it."""

    status: str
    done_at: float
    """Unix seconds of the `done` event (its stream entry id: Redis's clock, in ms)."""
    first_at: float
    """Unix seconds of the job's first event (`queued`, written when it was submitted)."""


events_key = keys.events
"""A job's event stream (kept under this name for the benchmarks that import it)."""


def entry_time(entry_id: str) -> float:
    """Unix seconds of a Redis Stream entry id (`<ms>-<seq>`)."""
    return int(entry_id.split("-", 1)[0]) / 1000


def _done_status(fields: dict[str, str]) -> str:
    """The final status a `done` event carries."""
    return str(json.loads(fields["data"]).get("status", "?"))


def wait_finished(
    client: redis.Redis, job_ids: Iterable[str], timeout_s: float, poll_s: float = 0.1
) -> dict[str, Finished]:
    """Until every job has its `done` event; what each one's stream says about its end.

    `client` decodes responses. A job whose record is finished but whose stream has no `done`
    event after LOST_DONE_S counts as finished with status `<status> without done`: its
    subscribers would wait for ever. Each poll reads one entry per unfinished job (the times
    come from the entries' ids, not from when they were read): the benchmarks share the
    machine with what they measure.
    """
    pending = set(job_ids)
    ended: dict[str, tuple[str, str]] = {}  # job id -> (status, id of its last entry)
    deadline = time.monotonic() + timeout_s
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} jobs not done after {timeout_s:.0f} s")
        ordered = sorted(pending)
        with client.pipeline(transaction=False) as pipe:
            for job_id in ordered:
                pipe.xrevrange(events_key(job_id), count=1)
            newest = pipe.execute()
        stalled = []
        for job_id, last in zip(ordered, newest, strict=True):
            if last and last[0][1]["event"] == "done":
                ended[job_id] = (_done_status(last[0][1]), last[0][0])
                pending.discard(job_id)
            elif last and time.time() - entry_time(last[0][0]) > LOST_DONE_S:
                stalled.append(job_id)
        for job_id in stalled:  # quiet for long: finished without `done`, or still waiting?
            with client.pipeline(transaction=True) as pipe:  # both read at one instant
                pipe.xrevrange(events_key(job_id), count=1)
                pipe.hget(keys.job(job_id), "status")
                last, status = pipe.execute()
            last_id, fields = last[0]
            if fields["event"] == "done":
                ended[job_id] = (_done_status(fields), last_id)
            elif status in TERMINAL:
                ended[job_id] = (f"{status} without done", last_id)
            else:
                continue
            pending.discard(job_id)
        if pending:
            time.sleep(poll_s)
    with client.pipeline(transaction=False) as pipe:
        for job_id in ended:
            pipe.xrange(events_key(job_id), count=1)
        firsts = pipe.execute()
    return {
        job_id: Finished(status, entry_time(last_id), entry_time(first[0][0]))
        for (job_id, (status, last_id)), first in zip(ended.items(), firsts, strict=True)
    }


@dataclass(frozen=True)
class Submitted:
    job_id: str
    sent_at: float
    """Unix seconds when the POST was sent."""
    accepted_at: float
    """Unix seconds when its 202 came back."""


async def submit_many(
    api_url: str,
    count: int,
    question: str,
    *,
    connections: int = 64,
    cookies: dict[str, str] | None = None,
) -> list[Submitted]:
    """POST `count` investigations at once (at most `connections` requests in flight).

    aiohttp, not httpx: this client shares the cores with what it measures, and aiohttp costs
    it a fraction of the CPU per request (bench/http_client.py).
    """
    body = json.dumps({"question": question, "datasource": DATASOURCE})
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(
        api_url,
        connector=connector,
        cookie_jar=aiohttp.CookieJar(unsafe=True),  # unsafe: sent to an IP address (loopback)
        cookies=cookies,
        headers={"Content-Type": "application/json"},
        timeout=aiohttp.ClientTimeout(total=120),
    ) as session:

        async def one() -> Submitted:
            sent = time.time()
            async with session.post("/api/v1/investigations", data=body) as response:
                text = await response.text()
                if response.status != 202:
                    raise RuntimeError(f"submission refused: {response.status} {text}")
            return Submitted(json.loads(text)["id"], sent, time.time())

        return list(await asyncio.gather(*(one() for _ in range(count))))


@dataclass(frozen=True)
class Timeline:
    """Where a finished job's time went, from its record (seconds)."""

    queued_s: float
    """Submitted -> started by a worker."""
    running_s: float
    """Started -> finished."""
    model_s: float
    """Time in model calls (the job's usage)."""
    tools_s: float
    """Time in tool calls (the job's usage)."""
    tool_errors: int


def timelines(client: redis.Redis, submitted: Iterable[Submitted]) -> list[Timeline]:
    """The timelines of finished jobs, from their records (`persai:job:{id}` field `doc`)."""
    sent = {s.job_id: s.sent_at for s in submitted}
    with client.pipeline(transaction=False) as pipe:
        for job_id in sent:
            pipe.hget(keys.job(job_id), "doc")
        docs = pipe.execute()
    result = []
    for sent_at, doc in zip(sent.values(), docs, strict=True):
        job = Job.model_validate_json(doc)
        if job.started_at is None or job.finished_at is None:
            continue
        result.append(
            Timeline(
                queued_s=job.started_at.timestamp() - sent_at,
                running_s=(job.finished_at - job.started_at).total_seconds(),
                model_s=job.usage.model_time_ms / 1000,
                tools_s=job.usage.tool_time_ms / 1000,
                tool_errors=sum(1 for step in job.steps if step.status != "ok"),
            )
        )
    return result


async def create_jobs(redis_url: str, count: int, question: str) -> list[str]:
    """Store `count` queued jobs (each in a new conversation) as the API would, unqueued."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    store = JobStore(client, retention_s=RETENTION_S)
    conversations = ConversationStore(client, per_owner=1_000_000)  # one user holds them all
    ids = []
    try:
        for _ in range(count):
            conversation_id = await conversations.create(USER, title=question)
            job = Job(
                id=uuid.uuid4().hex,
                owner=USER,
                question=question,
                datasource=DATASOURCE,
                conversation_id=conversation_id,
                model=MODEL,
            )
            await store.create(job, None, RETENTION_S)
            ids.append(job.id)
    finally:
        await client.aclose()
    return ids


def publish(redis_url: str, job_ids: list[str]) -> list[Submitted]:
    """Queue stored jobs for the workers, as fast as one Celery producer can."""
    celery = create_celery(Settings(), redis_url)
    celery.conf.broker_pool_limit = 4  # this publisher's own connection pool, not PersAI's
    submitted = []
    for job_id in job_ids:
        sent = time.time()
        celery.send_task(INVESTIGATE, args=[job_id])
        submitted.append(Submitted(job_id, sent, time.time()))
    celery.close()
    return submitted
