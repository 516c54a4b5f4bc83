"""Who reads alert investigations (Perses's answer for the user's own token, cached; the
operator's list), the alert listing's filters, and the service identity's sign-in."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from persai.alerts import AlertsConfig, ServiceIdentities, parse
from persai.alerts.access import ReadAccess
from persai.config import Settings
from persai.credentials import Credentials, Sealer
from persai.jobs import AlertRef, Job, JobStore
from persai.server import create_app
from tests.support.alerts import TOKEN, alert, payload, write_config
from tests.support.perses import PersesStandin
from tests.support.redis import RedisServer

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


async def test_with_perses_the_alert_runs_as_the_service_user_and_readers_are_asked(
    perses: PersesStandin, redis: aioredis.Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    perses.add_user("persai-bot", "bot-password", projects={"shop"})
    perses.add_datasource("prom", "http://127.0.0.1:9", project="shop")
    (tmp_path / "password").write_text("bot-password\n")
    config = write_config(
        tmp_path,
        "/proxy/projects/shop/datasources/prom",
        identity=f"{{login: persai-bot, password_file: {tmp_path / 'password'}}}",
    )
    settings = Settings(
        redis_url=redis_server.url,
        perses_api_url=perses.base_url,
        secret_key=SECRET,
        model="m",
        alerts_config=config,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://persai") as client,
    ):
        body = payload(alert("a1"))
        fired = await client.post(URL, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert fired.status_code == 200, fired.text
        job_id = fired.json()["investigations"][0]
        sealed = await JobStore(redis, retention_s=60).credentials(job_id)
        assert sealed is not None
        forwarded = Sealer(SECRET).open(sealed, context=job_id)
        assert perses.user_of(forwarded.access_token.get_secret_value()) == "persai-bot"

        def bearer(user: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {perses.issue_tokens(user).access_token}"}

        alice = await client.get(f"/api/v1/investigations/{job_id}", headers=bearer("alice"))
        assert alice.status_code == 200
        assert alice.json()["source"] == "alert"
        bob = await client.get(f"/api/v1/investigations/{job_id}", headers=bearer("bob"))
        assert bob.status_code == 404  # the same as for an id that does not exist
        listed = await client.get(
            "/api/v1/investigations", params={"source": "alert"}, headers=bearer("bob")
        )
        assert listed.json()["items"] == []


def test_with_perses_a_receiver_without_identity_stops_the_start(
    perses: PersesStandin, redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = Settings(
        redis_url=redis_server.url,
        perses_api_url=perses.base_url,
        secret_key=SECRET,
        alerts_config=write_config(tmp_path),
    )
    with pytest.raises(ValueError, match="receiver 'oncall' needs an identity"):
        create_app(settings)
