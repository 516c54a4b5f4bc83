"""The Perses stand-in's datasource proxy in front of a real Prometheus, with permissions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.perses import PersesStandin
from tests.support.prometheus import PrometheusServer

pytestmark = pytest.mark.integration

SHOP = "/proxy/projects/shop/datasources/prom"
DASHBOARD = "/proxy/projects/shop/dashboards/checkout/datasources/prom"
GLOBAL = "/proxy/globaldatasources/everything"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    with PrometheusServer.start(tmp_path_factory.mktemp("prometheus")) as server:
        yield server


@pytest.fixture
def perses(prometheus: PrometheusServer) -> Iterator[PersesStandin]:
    standin = PersesStandin()
    standin.add_user("alice", "alice-password", projects={"shop"})
    standin.add_user("bob", "bob-password", global_ds=False)
    standin.add_datasource("prom", prometheus.url, project="shop")
    standin.add_datasource("everything", prometheus.url)
    standin.add_dashboard(
        "shop", "checkout", datasource="prom", panels={"Requests": "sum(rate(http_requests[5m]))"}
    )
    with standin:
        yield standin


@contextlib.contextmanager
def _login(perses: PersesStandin, user: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=perses.base_url, timeout=10) as client:
        answer = client.post(
            "/api/auth/providers/native/login", json={"login": user, "password": f"{user}-password"}
        )
        assert answer.status_code == 200
        client.cookies.clear()  # the Bearer header is what is under test here
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield client


def _value(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "success"
    return str(body["data"]["result"][0]["value"][1])


@pytest.mark.parametrize("route", [SHOP, DASHBOARD, GLOBAL])
def test_proxy_forwards_alices_queries_to_prometheus(perses: PersesStandin, route: str) -> None:
    with _login(perses, "alice") as alice:
        by_get = alice.get(f"{route}/api/v1/query", params={"query": "vector(42)"})
        by_post = alice.post(f"{route}/api/v1/query", data={"query": "vector(7)"})

    assert _value(by_get) == "42"
    assert _value(by_post) == "7"
    assert perses.count("proxy") == 2


def test_proxy_forwards_range_queries(perses: PersesStandin) -> None:
    with _login(perses, "alice") as alice:
        answer = alice.get(
            f"{SHOP}/api/v1/query_range",
            params={"query": "vector(1)", "start": "1700000000", "end": "1700000600", "step": "60"},
        )

    assert answer.status_code == 200
    assert len(answer.json()["data"]["result"][0]["values"]) == 11


@pytest.mark.parametrize("route", [SHOP, DASHBOARD, GLOBAL])
def test_proxy_answers_403_to_bob(perses: PersesStandin, route: str) -> None:
    with _login(perses, "bob") as bob:
        answer = bob.get(f"{route}/api/v1/query", params={"query": "vector(1)"})

    assert answer.status_code == 403
    assert "missing 'read'" in answer.json()["message"]


def test_proxy_answers_401_to_a_forged_token(perses: PersesStandin) -> None:
    forged = perses.issue_tokens("alice").access_token[:-4] + "AAAA"

    answer = httpx.get(
        f"{perses.base_url}{SHOP}/api/v1/query",
        params={"query": "vector(1)"},
        headers={"Authorization": f"Bearer {forged}"},
    )

    assert answer.status_code == 401


def test_resource_lists_follow_permissions(perses: PersesStandin) -> None:
    with _login(perses, "alice") as alice, _login(perses, "bob") as bob:
        projects = alice.get("/api/v1/projects").json()
        dashboard = alice.get("/api/v1/projects/shop/dashboards/checkout").json()
        datasources = alice.get("/api/v1/projects/shop/datasources").json()
        assert bob.get("/api/v1/projects").json() == []
        assert bob.get("/api/v1/projects/shop/dashboards").status_code == 403
        assert bob.get("/api/v1/globaldatasources").status_code == 403

    assert [p["metadata"]["name"] for p in projects] == ["shop"]
    assert datasources[0]["spec"]["plugin"]["kind"] == "PrometheusDatasource"
    (panel,) = dashboard["spec"]["panels"].values()
    assert panel["spec"]["plugin"]["kind"] == "TimeSeriesChart"
    query = panel["spec"]["queries"][0]["spec"]["plugin"]
    assert query["kind"] == "PrometheusTimeSeriesQuery"
    assert query["spec"]["query"] == "sum(rate(http_requests[5m]))"


def test_expired_access_token_is_401_and_refresh_brings_a_new_one(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    with PersesStandin(access_ttl_s=1) as perses:
        perses.add_user("alice", "alice-password", projects={"shop"})
        perses.add_datasource("prom", prometheus.url, project="shop")
        expired = perses.sign({"sub": "alice", "exp": 1, "nbf": 0})
        refresh = perses.issue_tokens("alice").refresh_token
        url = f"{perses.base_url}{SHOP}/api/v1/query"

        refused = httpx.get(
            url, params={"query": "vector(1)"}, headers={"Authorization": f"Bearer {expired}"}
        )
        renewed = httpx.post(f"{perses.base_url}/api/auth/refresh", json={"refresh_token": refresh})
        fresh = renewed.json()["access_token"]
        answer = httpx.get(
            url, params={"query": "vector(1)"}, headers={"Authorization": f"Bearer {fresh}"}
        )

    assert refused.status_code == 401
    assert renewed.json()["token_type"] == "Bearer"
    assert renewed.json()["expires_in"] == 1
    assert _value(answer) == "1"
