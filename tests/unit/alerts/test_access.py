"""Who reads alert investigations (Perses's answer for the user's own token, cached; the
operator's list), the alert listing's filters, and the service identity's sign-in."""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis

from persai.alerts import AlertsConfig, ServiceIdentities, parse
from persai.alerts.access import ReadAccess
from persai.credentials import Credentials, Sealer
from persai.jobs import AlertRef, Job
from tests.support.perses import PersesStandin
from tests.unit.alerts.conftest import alert, payload

pytestmark = pytest.mark.anyio
URL = "/api/v1/alerts/alertmanager"
SECRET = "s" * 32


def _config(monkeypatch: pytest.MonkeyPatch) -> AlertsConfig:
    monkeypatch.setenv("TEST_TOKEN", "alertmanager-token-0123456789")
    monkeypatch.setenv("TEST_PASSWORD", "bot-password")
    return parse(
        {
            "receivers": [
                {
                    "name": "oncall",
                    "token_env": "TEST_TOKEN",
                    "datasource": "/proxy/projects/shop/datasources/prom",
                    "readers": ["carol"],
                    "identity": {"login": "persai-bot", "password_env": "TEST_PASSWORD"},
                }
            ]
        }
    )


def _job(datasource: str) -> Job:
    return Job(
        id="d" * 32,
        owner="alert:oncall",
        question="q",
        datasource=datasource,
        conversation_id="c" * 32,
        source="alert",
        alert=AlertRef(receiver="oncall", group_key="g", alertname="CheckoutErrors"),
    )


async def test_whoever_may_read_the_datasource_in_perses_reads_the_investigation(
    perses: PersesStandin, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    perses.add_datasource("prom", "http://127.0.0.1:9", project="shop")
    async with httpx.AsyncClient() as http:
        access = ReadAccess(_config(monkeypatch), ["dave"], redis, http, perses.base_url)
        job = _job("/proxy/projects/shop/datasources/prom")

        def tokens(user: str) -> Credentials:
            issued = perses.issue_tokens(user)
            return Credentials.from_tokens(issued.access_token, issued.refresh_token)

        assert await access.may_read("alice", tokens("alice"), job)
        assert not await access.may_read("bob", tokens("bob"), job)  # no role in project shop
        asked = perses.count("datasources")
        assert await access.may_read("alice", tokens("alice"), job)
        assert perses.count("datasources") == asked  # the verdict was cached
        assert await access.may_read("carol", None, job)  # the receiver's readers
        assert await access.may_read("dave", None, job)  # PERSAI_ALERTS_READERS
        missing = _job("/proxy/projects/shop/datasources/gone")
        assert not await access.may_read("alice", tokens("alice"), missing)
        user_job = _job("/proxy/projects/shop/datasources/prom").model_copy(
            update={"source": "user", "alert": None}
        )
        assert not await access.may_read("alice", tokens("alice"), user_job)


async def test_the_service_user_signs_in_once_then_refreshes(
    perses: PersesStandin, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    perses.add_user("persai-bot", "bot-password", projects={"shop"})
    config = _config(monkeypatch)
    identity = config.receivers[0].identity
    assert identity is not None
    async with httpx.AsyncClient() as http:
        identities = ServiceIdentities(redis, http, perses.base_url, Sealer(SECRET))
        first = await identities.credentials("oncall", identity)
        assert perses.user_of(first.access_token.get_secret_value()) == "persai-bot"
        again = await identities.credentials("oncall", identity)
        assert again.access_token == first.access_token
        assert perses.count("login") == 1
        # stored sealed: neither the password nor a token is in Redis in clear
        stored = " ".join([str(await redis.get(k)) for k in await redis.keys("*")])
        assert "bot-password" not in stored
        assert first.access_token.get_secret_value() not in stored

        perses.access_ttl_s = 120
        expiring = perses.issue_tokens("persai-bot", access_ttl_s=10)
        sealed = Sealer(SECRET).seal(
            Credentials.from_tokens(expiring.access_token, expiring.refresh_token),
            context="alert-identity:oncall",
        )
        await redis.set("persai:alert:identity:oncall", sealed)
        refreshed = await identities.credentials("oncall", identity)
        assert refreshed.seconds_left() > 60
        assert (perses.count("login"), perses.count("refresh")) == (1, 1)


async def test_alert_investigations_are_listed_by_name_status_and_time(
    replicas: list[httpx.AsyncClient],
) -> None:
    client = replicas[0]
    first = (await client.post(URL, json=payload(alert("a1"), group="g1"))).json()
    other = payload(alert("e1", alertname="DiskFull"), group="g2")
    other["commonLabels"]["alertname"] = "DiskFull"
    second = (await client.post(URL, json=other)).json()

    listed = (await client.get("/api/v1/investigations", params={"source": "alert"})).json()
    assert [j["id"] for j in listed["items"]] == second["investigations"] + first["investigations"]
    by_name = {"source": "alert", "alertname": "DiskFull"}
    assert (await client.get("/api/v1/investigations", params=by_name)).json()["total"] == 1
    done = {"source": "alert", "status": "succeeded"}
    assert (await client.get("/api/v1/investigations", params=done)).json()["total"] == 0
    later = {"source": "alert", "since": "2200-01-01T00:00:00Z"}
    assert (await client.get("/api/v1/investigations", params=later)).json()["items"] == []
    bad = await client.get("/api/v1/investigations", params={"source": "alert", "status": "x"})
    assert bad.status_code == 422
    # the caller's own investigations are not the receiver's
    assert (await client.get("/api/v1/investigations")).json()["total"] == 0
    got = await client.get(f"/api/v1/investigations/{first['investigations'][0]}")
    assert got.json()["alert"]["alertname"] == "CheckoutErrors"
