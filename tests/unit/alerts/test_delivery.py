"""Notifications of ended alert investigations: signed, retried with backoff while the
destination is down, each attempt recorded, and taken over when a worker dies mid-delivery."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from persai.alerts import Outbox, parse
from persai.alerts.delivery import Courier
from persai.config import Settings
from persai.jobs import AlertRef, Evidence, Job, JobStatus, JobStore
from persai.logging import setup_logging
from persai.queue import QueueMessage

pytestmark = pytest.mark.anyio

SECRET = "hook-secret-0123456789"
SLACK_URL = "http://slack.invalid/services/T000/B000/XXXXSECRET"


def _config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    monkeypatch.setenv("TEST_RECEIVER_TOKEN", "alertmanager-token-0123456789")
    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)
    monkeypatch.setenv("TEST_SLACK_URL", SLACK_URL)
    return Settings(
        auth=False,
        alerts_notify_backoff_s=0.05,
        alerts_notify_backoff_max_s=0.2,
        alerts_notify_timeout_s=0.2,
    )


CONFIG = {
    "public_url": "https://persai.example.com",
    "receivers": [
        {
            "name": "oncall",
            "token_env": "TEST_RECEIVER_TOKEN",
            "datasource": "/proxy/globaldatasources/prom",
            "destinations": [
                {
                    "name": "hook",
                    "kind": "webhook",
                    "url": "http://hooks.invalid/persai",
                    "secret_env": "TEST_HOOK_SECRET",
                },
                {"name": "chat", "kind": "slack", "url_env": "TEST_SLACK_URL"},
            ],
        }
    ],
}


async def _ended_job(redis: aioredis.Redis, job_id: str) -> None:
    store = JobStore(redis, retention_s=600)
    job = Job(
        id=job_id,
        owner="alert:oncall",
        question="Alert CheckoutErrors is firing",
        datasource="/proxy/globaldatasources/prom",
        conversation_id="c" * 32,
        source="alert",
        alert=AlertRef(receiver="oncall", group_key="{}:{}", alertname="CheckoutErrors"),
    )
    await Outbox(redis).expect(job_id)
    await store.create(job, None, 600, QueueMessage(tag="t", raw="{}"))
    job.answer = "checkout-api's 5xx rose 12x at 10:31 after the deploy.\n\nDetails follow."
    job.evidence = [
        Evidence(
            tool="execute_range_query",
            datasource=job.datasource,
            query='sum by (pod) (rate(http_requests_total{code=~"5.."}[5m]))',
            kind="range",
            start="2026-01-01T10:00:00Z",
            end="2026-01-01T11:00:00Z",
            step_seconds=30,
            findings=['{pod="p3"}: high since 10:31'],
        )
    ]
    await store.transition(job, JobStatus.SUCCEEDED, (JobStatus.QUEUED,))


def _counted(destination: str, outcome: str) -> float:
    labels = {"destination": destination, "outcome": outcome}
    return REGISTRY.get_sample_value("persai_alert_notifications_total", labels) or 0.0


class Destinations:
    """The fake destinations: the hook answers 503 `down` times first."""

    def __init__(self, down: int) -> None:
        self.down = down
        self.received: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        if request.url.host == "hooks.invalid" and self.down > 0:
            self.down -= 1
            return httpx.Response(503)
        return httpx.Response(200)

    def delivered(self, host: str) -> list[httpx.Request]:
        return [r for r in self.received if r.url.host == host]


async def _until(condition: object, courier: Courier, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not delivered in time"
        await courier.tick()
        await asyncio.sleep(0.02)


async def test_a_signed_notification_arrives_after_the_destination_comes_back(
    redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = _config(monkeypatch, tmp_path)
    destinations = Destinations(down=3)
    http = httpx.AsyncClient(transport=httpx.MockTransport(destinations))
    courier = Courier(settings, parse(CONFIG), redis, http)
    failed_before = _counted("hook", "failed")
    await _ended_job(redis, "a" * 32)

    def sent() -> bool:
        hook = [r for r in destinations.delivered("hooks.invalid")]
        return len(hook) == 4 and len(destinations.delivered("slack.invalid")) == 1

    await _until(sent, courier)
    hook = destinations.delivered("hooks.invalid")[-1]
    timestamp = hook.headers["X-PersAI-Timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + hook.content, hashlib.sha256)
    assert hook.headers["X-PersAI-Signature"] == "sha256=" + expected.hexdigest()
    # every attempt of one notification carries the same delivery id (receivers drop repeats)
    assert (
        len({r.headers["X-PersAI-Delivery"] for r in destinations.delivered("hooks.invalid")}) == 1
    )
    body = json.loads(hook.content)
    assert body["investigation"]["status"] == "succeeded"
    assert (
        body["investigation"]["summary"] == "checkout-api's 5xx rose 12x at 10:31 after the deploy."
    )
    assert body["investigation"]["evidence"][0]["findings"] == ['{pod="p3"}: high since 10:31']
    assert (
        body["investigation"]["link"]
        == f"https://persai.example.com/api/v1/investigations/{'a' * 32}"
    )
    assert body["alert"]["alertname"] == "CheckoutErrors"
    slack = json.loads(destinations.delivered("slack.invalid")[0].content)
    assert slack["blocks"][0]["text"]["text"] == "CheckoutErrors (firing): investigated"
    for request in destinations.received:  # no secret in any notification
        assert SECRET not in request.content.decode()
        assert "XXXXSECRET" not in request.content.decode()

    job = await JobStore(redis, retention_s=60).get("a" * 32)
    assert job is not None
    assert job.alert is not None
    hook_attempts = [n for n in job.alert.notifications if n["destination"] == "hook"]
    assert [n["outcome"] for n in hook_attempts] == ["failed: HTTP 503"] * 3 + ["delivered"]
    assert [n["attempt"] for n in hook_attempts] == [1, 2, 3, 4]
    assert _counted("hook", "failed") - failed_before == 3  # on /metrics
    # and nothing more is sent
    for _ in range(3):
        await courier.tick()
    assert len(destinations.received) == 5
    await http.aclose()


async def test_a_delivery_whose_worker_died_is_taken_over_after_its_lease(
    redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = _config(monkeypatch, tmp_path)
    await _ended_job(redis, "b" * 32)
    dead = Courier(settings, parse(CONFIG), redis, httpx.AsyncClient())
    await dead.release_ended()  # then this worker dies, holding its deliveries
    taken = await Outbox(redis).take(10, lease_s=0.5)
    assert len(taken) == 2

    destinations = Destinations(down=0)
    http = httpx.AsyncClient(transport=httpx.MockTransport(destinations))
    alive = Courier(settings, parse(CONFIG), redis, http)
    await alive.tick()
    assert destinations.received == []  # still leased to the dead worker
    await _until(lambda: len(destinations.received) == 2, alive)
    assert {r.url.host for r in destinations.received} == {"hooks.invalid", "slack.invalid"}
    await http.aclose()


async def test_no_secret_reaches_the_log(
    redis: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("DEBUG", "text")
    try:
        destinations = Destinations(down=1)
        http = httpx.AsyncClient(transport=httpx.MockTransport(destinations))
        courier = Courier(_config(monkeypatch, tmp_path), parse(CONFIG), redis, http)
        await _ended_job(redis, "c" * 32)
        await _until(lambda: len(destinations.received) == 3, courier)
        await http.aclose()
        logged = capsys.readouterr().err
    finally:
        logging.getLogger().handlers.clear()
    assert "notification(s) queued" in logged  # the log was on
    for secret in (SECRET, "XXXXSECRET", "alertmanager-token-0123456789"):
        assert secret not in logged
