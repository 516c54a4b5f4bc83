"""The Perses stand-in in front of a real Prometheus: it answers as Perses 0.54 does.

Each test names the behaviour of Perses it holds (the file it follows is cited in the stand-in):
a stand-in that drifted from Perses would let PersAI pass against something no user runs.
"""

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
    standin.add_datasource("everything", prometheus.url, allowed_endpoints=None)
    standin.add_dashboard(
        "shop",
        "checkout",
        datasource="prom",
        panels={"Requests": "sum(rate(http_requests[5m]))"},
        local_datasources={"prom": prometheus.url},
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
        by_post = alice.post(f"{route}/api/v1/query", data={"query": "vector(7)"})
        ranged = alice.post(
            f"{route}/api/v1/query_range",
            data={"query": "vector(1)", "start": "1700000000", "end": "1700000600", "step": "60"},
        )

    assert _value(by_post) == "7"
    assert len(ranged.json()["data"]["result"][0]["values"]) == 11
    assert perses.count("proxy") == 2


def test_a_ui_configured_datasource_allows_only_its_endpoints_and_methods(
    perses: PersesStandin,
) -> None:
    with _login(perses, "alice") as alice:
        by_get = alice.get(f"{SHOP}/api/v1/query", params={"query": "vector(1)"})
        rules = alice.get(f"{SHOP}/api/v1/rules")
        values = alice.get(f"{SHOP}/api/v1/label/__name__/values")
        labels = alice.post(f"{SHOP}/api/v1/labels")
        unrestricted = alice.get(f"{GLOBAL}/api/v1/rules")

    assert by_get.status_code == 403
    assert by_get.json() == {
        "message": 'forbidden access: you are not allowed to use this endpoint "/api/v1/query" '
        "with the HTTP method GET"
    }
    assert rules.status_code == 403
    assert values.status_code == 200
    assert labels.status_code == 200
    assert unrestricted.status_code == 200  # saved without allowedEndpoints: not restricted


@pytest.mark.parametrize("route", [SHOP, DASHBOARD, GLOBAL])
def test_proxy_answers_403_to_bob(perses: PersesStandin, route: str) -> None:
    with _login(perses, "bob") as bob:
        answer = bob.post(f"{route}/api/v1/query", data={"query": "vector(1)"})

    assert answer.status_code == 403
    kind = "GlobalDatasource" if route == GLOBAL else "Datasource"  # Datasource for local ones
    assert answer.json()["message"].startswith("forbidden access: missing 'read' ")
    assert answer.json()["message"].endswith(f"for '{kind}' kind")


def test_a_dashboards_own_datasource_is_its_spec_not_the_project_one(
    perses: PersesStandin,
) -> None:
    with _login(perses, "alice") as alice:
        missing = alice.post(
            "/proxy/projects/shop/dashboards/checkout/datasources/everything/api/v1/query",
            data={"query": "vector(1)"},
        )
        no_dashboard = alice.post(
            "/proxy/projects/shop/dashboards/nope/datasources/prom/api/v1/query",
            data={"query": "vector(1)"},
        )
        unknown_project = alice.post(
            "/proxy/projects/nope/datasources/prom/api/v1/query", data={"query": "vector(1)"}
        )

    expected = (
        'document not found: unable to forward the request to the datasource "{}", '
        "datasource doesn't exist"
    )
    assert (missing.status_code, missing.json()["message"]) == (404, expected.format("everything"))
    assert (no_dashboard.status_code, no_dashboard.json()["message"]) == (
        404,
        expected.format("prom"),
    )
    assert unknown_project.status_code == 400


def test_a_missing_token_is_401_a_forged_one_too(perses: PersesStandin) -> None:
    forged = perses.issue_tokens("alice").access_token[:-4] + "AAAA"
    url = f"{perses.base_url}{SHOP}/api/v1/query"

    missing = httpx.post(url, data={"query": "vector(1)"})
    refused = httpx.post(url, data={"query": "1"}, headers={"Authorization": f"Bearer {forged}"})

    assert (missing.status_code, missing.json()) == (401, {"message": "missing or malformed jwt"})
    assert (refused.status_code, refused.json()) == (401, {"message": "invalid or expired jwt"})


def test_resource_lists_follow_permissions(perses: PersesStandin) -> None:
    with _login(perses, "alice") as alice, _login(perses, "bob") as bob:
        projects = alice.get("/api/v1/projects").json()
        dashboard = alice.get("/api/v1/projects/shop/dashboards/checkout").json()
        listed = alice.get("/api/v1/projects/shop/dashboards", params={"metadata_only": "true"})
        datasources = alice.get("/api/v1/projects/shop/datasources").json()
        assert bob.get("/api/v1/projects").json() == []
        assert bob.get("/api/v1/projects/shop/dashboards").status_code == 403
        assert bob.get("/api/v1/globaldatasources").status_code == 403

    assert [p["metadata"]["name"] for p in projects] == ["shop"]
    assert listed.json() == [
        {"kind": "Dashboard", "metadata": dashboard["metadata"], "spec": {}}  # metadata only
    ]
    plugin = datasources[0]["spec"]["plugin"]
    assert plugin["kind"] == "PrometheusDatasource"
    assert len(plugin["spec"]["proxy"]["spec"]["allowedEndpoints"]) == 7
    (panel,) = dashboard["spec"]["panels"].values()
    assert panel["spec"]["plugin"]["kind"] == "TimeSeriesChart"
    query = panel["spec"]["queries"][0]["spec"]["plugin"]
    assert query["kind"] == "PrometheusTimeSeriesQuery"
    assert query["spec"]["query"] == "sum(rate(http_requests[5m]))"
    assert set(dashboard["spec"]["datasources"]) == {"prom"}


def test_login_sets_cookies_that_outlive_the_access_token(perses: PersesStandin) -> None:
    login = "/api/auth/providers/native/login"
    with httpx.Client(base_url=perses.base_url, timeout=10) as client:
        wrong = client.post(login, json={"login": "alice", "password": "nope"})
        signed_in = client.post(login, json={"login": "alice", "password": "alice-password"})

    assert wrong.status_code == 400
    cookies = {c.split("=", 1)[0]: c for c in signed_in.headers.get_list("set-cookie")}
    for name in ("jwtPayload", "jwtSignature"):  # max(access 15 min, refresh 24 h)
        assert "Max-Age=86400" in cookies[name]
    assert "Max-Age=86400" in cookies["jwtRefreshToken"]
    assert all("SameSite=lax" in c and "Secure" not in c for c in cookies.values())
    assert "HttpOnly" not in cookies["jwtPayload"]
    assert "HttpOnly" in cookies["jwtSignature"]


def test_everything_is_served_under_the_api_prefix(prometheus: PrometheusServer) -> None:
    with PersesStandin(api_prefix="/perses") as perses:
        perses.add_user("alice", "alice-password", projects={"shop"})
        perses.add_datasource("prom", prometheus.url, project="shop")
        assert perses.base_url.endswith("/perses")
        with _login(perses, "alice") as alice:
            answer = alice.post(f"{SHOP}/api/v1/query", data={"query": "vector(3)"})
            outside = alice.get(
                perses.base_url.removesuffix("/perses") + "/api/v1/projects", follow_redirects=False
            )

    assert _value(answer) == "3"
    assert (outside.status_code, outside.headers["location"]) == (302, "/perses/api/v1/projects")


def test_older_and_kubernetes_perses_lack_whoami_or_refresh(prometheus: PrometheusServer) -> None:
    with PersesStandin(version="0.52.0") as old:
        token = old.issue_tokens("alice").access_token
        whoami = httpx.get(
            f"{old.base_url}/api/v1/user/whoami", headers={"Authorization": f"Bearer {token}"}
        )
    with PersesStandin(kubernetes_auth=True) as delegated:
        refresh = httpx.post(f"{delegated.base_url}/api/auth/refresh", json={"refresh_token": "x"})

    assert whoami.status_code == 404
    assert refresh.status_code in (404, 405)


def test_an_unreachable_prometheus_is_a_500_with_the_error(perses: PersesStandin) -> None:
    perses.add_datasource("gone", "http://127.0.0.1:9", project="shop")
    with _login(perses, "alice") as alice:
        answer = alice.post("/proxy/projects/shop/datasources/gone/api/v1/query", data={"q": "1"})
    assert answer.status_code == 500


def test_expired_access_token_is_401_and_refresh_brings_a_new_one(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    with PersesStandin(access_ttl_s=30) as perses:
        perses.add_user("alice", "alice-password", projects={"shop"})
        perses.add_datasource("prom", prometheus.url, project="shop")
        expired = perses.sign({"sub": "alice", "exp": 1, "nbf": 0})
        refresh = perses.issue_tokens("alice").refresh_token
        url = f"{perses.base_url}{SHOP}/api/v1/query"

        refused = httpx.post(
            url, data={"query": "vector(1)"}, headers={"Authorization": f"Bearer {expired}"}
        )
        renewed = httpx.post(f"{perses.base_url}/api/auth/refresh", json={"refresh_token": refresh})
        fresh = renewed.json()["access_token"]
        answer = httpx.post(
            url, data={"query": "vector(1)"}, headers={"Authorization": f"Bearer {fresh}"}
        )

    assert refused.status_code == 401
    assert renewed.json()["token_type"] == "Bearer"
    assert renewed.json()["expires_in"] == 30
    assert _value(answer) == "1"
