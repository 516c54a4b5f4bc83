"""Authentication end to end: Perses users, their cookies and bearer tokens, through every process.

The Perses stand-in signs real HS512 tokens and proxies to the real Prometheus; PersAI's API and
worker run as subprocesses with authentication on, so what is asserted here is what a Perses user
would see: their questions answered with their own permissions, other people's work invisible,
bad credentials refused with a clear 401, and no token left behind in logs or Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
import redis
from starlette.requests import Request
from starlette.responses import Response

from persai.credentials import token_claims
from persai.incidents import Incident
from tests.support.auth import StartStack, auth_env, bearer, cookie_header, metric
from tests.support.persai import wait_for_job
from tests.support.perses import PersesStandin, Tokens, User, forge_token
from tests.support.prometheus import PrometheusServer
from tests.support.scripted_model import ScriptedModel

SHOP = "/proxy/projects/shop/datasources/prom"


class RecordingPerses(PersesStandin):
    """The stand-in, remembering as whom each proxy call was made and each token it refreshed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._proxied: list[tuple[str, int]] = []
        self._refreshed: list[tuple[str, str]] = []

    def proxied(self) -> list[tuple[str, int]]:
        """(user, HTTP status) of every proxy call that got past the token check."""
        with self._lock:
            return list(self._proxied)

    def refreshed(self) -> list[tuple[str, str]]:
        """(user, new access token) of every refresh Perses granted, in order."""
        with self._lock:
            return list(self._refreshed)

    async def _proxy(self, request: Request, user: User) -> Response:
        response = await super()._proxy(request, user)
        with self._lock:
            self._proxied.append((user.name, response.status_code))
        return response

    async def _refresh(self, request: Request) -> Response:
        response = await super()._refresh(request)
        if response.status_code == 200:
            access_token = json.loads(bytes(response.body))["access_token"]
            with self._lock:
                self._refreshed.append((token_claims(access_token)["sub"], access_token))
        return response


@pytest.fixture
def perses(prometheus: PrometheusServer) -> Iterator[RecordingPerses]:
    standin = RecordingPerses()
    standin.add_user("alice", "alice-password", projects={"shop"})
    standin.add_user("bob", "bob-password", projects={"ops"}, global_ds=False)
    standin.add_user("carol", "carol-password", projects={"shop"})
    standin.add_user("dave", "dave-password", projects={"shop"})
    standin.add_datasource("prom", prometheus.url, project="shop")
    standin.add_datasource("prom", prometheus.url, project="ops")
    with standin:
        yield standin


def login(perses: PersesStandin, user: str) -> Tokens:
    """Sign in to the stand-in as a browser does; the tokens its cookies carry."""
    answer = httpx.post(
        f"{perses.base_url}/api/auth/providers/native/login",
        json={"login": user, "password": f"{user}-password"},
    )
    assert answer.status_code == 200, answer.text
    cookies = answer.cookies
    tokens = Tokens(
        access_token=f"{cookies['jwtPayload']}.{cookies['jwtSignature']}",
        refresh_token=cookies["jwtRefreshToken"],
    )
    assert tokens.access_token == answer.json()["access_token"]
    return tokens


def latency_scenario(
    model: ScriptedModel,
    name: str,
    incident: Incident,
    *,
    tool_calls: int = 1,
    gap_s: float = 0,
    answer_delay_s: float = 0,
) -> None:
    """`tool_calls` range queries for the incident (each after `gap_s`), then an answer (after
    `answer_delay_s`) quoting the first service the last tool result names: only Prometheus's
    data holds it."""
    call = {
        "name": "execute_range_query",
        "arguments": {"query": incident.truth.query, "duration": "2h"},
    }
    steps: list[dict[str, Any]] = [
        {"tool_calls": [call], **({"delay_s": gap_s} if index else {})}
        for index in range(tool_calls)
    ]
    answer = {"text": "The culprit is {match}.", "match": r'service="([^"]+)"'}
    steps.append({**answer, "delay_s": answer_delay_s})
    model.add_scenario(name, steps)


def submit(client: httpx.Client, scenario: str) -> str:
    """Ask about the shop's Prometheus (through the Perses proxy); the investigation's id."""
    question = f"[scenario:{scenario}] Which service is slow?"
    answer = client.post("/api/v1/investigations", json={"question": question, "datasource": SHOP})
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def assert_refused(answer: httpx.Response, status: int, error_type: str, *words: str) -> None:
    """The answer is the error body of `status` and `error_type`, its message saying `words`."""
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["type"] == error_type, error
    for word in words:
        assert word in error["message"], (word, error)


def redis_contents(url: str) -> bytes:
    """Every key and value in Redis, whatever its type, as one blob to search."""
    client = redis.Redis.from_url(url)
    readers: dict[bytes, Callable[[bytes], Any]] = {
        b"string": client.get,
        b"hash": client.hgetall,
        b"list": lambda key: client.lrange(key, 0, -1),
        b"set": client.smembers,
        b"zset": lambda key: client.zrange(key, 0, -1),
        b"stream": lambda key: client.xrange(key),
    }
    parts: list[bytes] = []
    with client:
        for key in client.scan_iter(count=1000):
            kind = client.type(key)
            assert kind in readers or kind == b"none", (key, kind)  # none: expired meanwhile
            value = readers[kind](key) if kind in readers else None
            parts += [key, repr(value).encode()]
    assert parts, "Redis is empty: nothing was searched"
    return b"\n".join(parts)


def secrets_of(tokens: Tokens) -> dict[str, str]:
    return {
        "access token": tokens.access_token,
        "access token signature": tokens.access_token.rsplit(".", 1)[1],
        "refresh token": tokens.refresh_token,
        "refresh token signature": tokens.refresh_token.rsplit(".", 1)[1],
    }


def test_cookie_and_bearer_clients_query_prometheus_as_themselves_and_leave_no_token(
    persai_stack: StartStack,
    perses: RecordingPerses,
    scripted_model: ScriptedModel,
    incidents: dict[str, Incident],
) -> None:
    latency = incidents["latency_spike"]
    latency_scenario(scripted_model, "auth-as-alice", latency)
    # the most talkative logging, so that the search for tokens below covers every log line
    running = persai_stack(**auth_env(perses), PERSAI_LOG_LEVEL="DEBUG")
    alice = login(perses, "alice")
    answers: dict[str, dict[str, Any]] = {}

    with running.client(cookies=alice.cookies) as browser:
        job_id = submit(browser, "auth-as-alice")
        answers["cookies"] = wait_for_job(browser, job_id)
        assert perses.count("refresh") == 1  # the API's check of the cookies, cached since
        assert perses.count("whoami") == 0
    with running.client(headers=bearer(alice.access_token)) as script:
        job_id = submit(script, "auth-as-alice")
        answers["bearer"] = wait_for_job(script, job_id)
        assert perses.count("whoami") == 1

    for how, job in answers.items():
        assert job["status"] == "succeeded", (how, job, running.logs())
        assert job["answer"] == f"The culprit is {latency.truth.culprit_value}.", how
        assert [step["status"] for step in job["steps"]] == ["ok"], how
    assert perses.proxied() == [("alice", 200), ("alice", 200)]
    assert perses.count("proxy") == 2

    # Nothing PersAI logged or keeps in Redis holds alice's tokens, nor did the model see them;
    # the sealed credentials of both jobs went when they ended.
    logs = running.logs()
    assert "succeeded" in logs  # the logs that are searched are the real ones
    stored = redis_contents(running.env["PERSAI_REDIS_URL"])
    sent_to_model = json.dumps(scripted_model.requests("auth-as-alice"))
    for what, secret in secrets_of(alice).items():
        assert secret not in logs, f"alice's {what} is in PersAI's logs"
        assert secret.encode() not in stored, f"alice's {what} is in Redis"
        assert secret not in sent_to_model, f"alice's {what} was sent to the model"
    for job in answers.values():
        assert f"persai:job:{job['id']}".encode() in stored
        assert f"persai:job:{job['id']}:credentials".encode() not in stored


def test_under_an_api_prefix_with_an_access_cookie_that_expired(
    persai_stack: StartStack,
    prometheus: PrometheusServer,
    scripted_model: ScriptedModel,
    incidents: dict[str, Incident],
) -> None:
    """Perses served under /perses, the plugin passing the proxy path as the Perses UI builds it
    ({api_prefix}/proxy/...), and a browser whose access cookie outlived its token (Perses keeps
    the access cookies as long as the refresh token): the question is answered, every call
    carrying the access token Perses returned, never the expired one."""
    latency = incidents["latency_spike"]
    latency_scenario(scripted_model, "auth-prefixed", latency)
    with RecordingPerses(api_prefix="/perses") as perses:
        perses.add_user("alice", "alice-password", projects={"shop"})
        perses.add_datasource("prom", prometheus.url, project="shop")  # as the UI saves it
        running = persai_stack(**auth_env(perses))
        stale = perses.issue_tokens("alice", access_ttl_s=-60)
        assert perses.user_of(stale.access_token) is None  # Perses itself refuses it

        with running.client(cookies=stale.cookies) as browser:
            question = "[scenario:auth-prefixed] Which service is slow?"
            asked = browser.post(
                "/api/v1/investigations",
                json={"question": question, "datasource": "/perses" + SHOP},
            )
            assert asked.status_code == 202, asked.text
            job = wait_for_job(browser, asked.json()["id"])
            elsewhere = browser.post(
                "/api/v1/investigations",
                json={"question": question, "datasource": "/grafana" + SHOP},
            )

        assert job["status"] == "succeeded", (job, running.logs())
        assert job["answer"] == f"The culprit is {latency.truth.culprit_value}."
        assert job["datasource"] == SHOP
        assert perses.proxied() == [("alice", 200)]
        ((user, returned),) = perses.refreshed()
        assert user == "alice"
        assert returned != stale.access_token
        assert_refused(elsewhere, 400, "invalid_request", "/perses/proxy/")


def test_investigation_outlives_a_five_second_access_token(
    persai_stack: StartStack,
    perses: RecordingPerses,
    scripted_model: ScriptedModel,
    incidents: dict[str, Incident],
) -> None:
    perses.access_ttl_s = 5
    latency = incidents["latency_spike"]
    latency_scenario(scripted_model, "auth-outlives", latency, tool_calls=3, gap_s=3.5)
    running = persai_stack(**auth_env(perses))
    store = redis.Redis.from_url(running.env["PERSAI_REDIS_URL"], decode_responses=True)
    # alice and carol at once in one worker: a refresh for one must never act for the other
    users = {name: login(perses, name) for name in ("alice", "carol")}
    first_expiry = max(float(token_claims(t.access_token)["exp"]) for t in users.values())
    jobs: dict[str, str] = {}
    for name, tokens in users.items():
        with running.client(cookies=tokens.cookies) as browser:
            jobs[name] = submit(browser, "auth-outlives")
    # dave's script sends a bare access token: nothing to refresh it with
    with running.client(headers=bearer(login(perses, "dave").access_token)) as script:
        dave_job = submit(script, "auth-outlives")
    checked_by_api = len(perses.refreshed())
    sealed = store.get(f"persai:job:{jobs['alice']}:credentials")
    assert isinstance(sealed, str)
    assert sealed.startswith("v1.")
    for secret in secrets_of(users["alice"]).values():
        assert secret not in sealed

    finished: dict[str, dict[str, Any]] = {}
    for name, job_id in jobs.items():
        # the browser's cookies expire meanwhile: follow the job with a token of its own
        poller = perses.issue_tokens(name, access_ttl_s=600).access_token
        with running.client(headers=bearer(poller)) as script:
            finished[name] = wait_for_job(script, job_id, timeout_s=60)

    for name, job in finished.items():
        assert job["status"] == "succeeded", (name, job, running.logs())
        assert job["answer"] == f"The culprit is {latency.truth.culprit_value}."
        assert [step["status"] for step in job["steps"]] == ["ok", "ok", "ok"]
        last_call = datetime.fromisoformat(job["steps"][-1]["started_at"]).timestamp()
        assert last_call > first_expiry + 1, "no tool call happened after the token expired"
        assert store.exists(f"persai:job:{job['id']}:credentials") == 0
    assert sorted(c for c in perses.proxied() if c[0] != "dave") == (
        [("alice", 200)] * 3 + [("carol", 200)] * 3
    )
    refreshed_by_worker = perses.refreshed()[checked_by_api:]
    assert {user for user, _ in refreshed_by_worker} == {"alice", "carol"}, refreshed_by_worker
    assert "refreshed a Perses access token" in running.logs()

    poller = perses.issue_tokens("dave", access_ttl_s=600).access_token
    with running.client(headers=bearer(poller)) as script:
        dave: dict[str, Any] = wait_for_job(script, dave_job)
    assert dave["status"] == "failed", dave
    assert "expired and there is no refresh token" in dave["error"]

    # the tokens Perses handed the worker are kept as secret as the user's own
    logs, stored = running.logs(), redis_contents(running.env["PERSAI_REDIS_URL"])
    for user, token in refreshed_by_worker:
        assert token not in logs, f"a refreshed token of {user} is in PersAI's logs"
        assert token.encode() not in stored, f"a refreshed token of {user} is in Redis"
    store.close()


def test_bob_cannot_see_alices_work_nor_read_her_datasource(
    persai_stack: StartStack,
    perses: RecordingPerses,
    scripted_model: ScriptedModel,
    incidents: dict[str, Incident],
) -> None:
    latency = incidents["latency_spike"]
    latency_scenario(scripted_model, "auth-alice-slow", latency, answer_delay_s=3)
    latency_scenario(scripted_model, "auth-bob-denied", latency)
    running = persai_stack(**auth_env(perses))
    alice, bob = login(perses, "alice"), login(perses, "bob")

    with (
        running.client(cookies=alice.cookies) as as_alice,
        running.client(cookies=bob.cookies) as as_bob,
    ):
        job_id = submit(as_alice, "auth-alice-slow")
        job = as_alice.get(f"/api/v1/investigations/{job_id}").json()
        conversation = f"/api/v1/conversations/{job['conversation_id']}"
        investigation = f"/api/v1/investigations/{job_id}"

        # while alice's investigation runs, bob is told it does not exist, whatever he tries
        for method, path in [
            ("GET", investigation),
            ("POST", f"{investigation}/cancel"),
            ("GET", f"{investigation}/events"),
            ("GET", conversation),
            ("DELETE", conversation),
        ]:
            answer = as_bob.request(method, path)
            assert answer.status_code == 404, (method, path, answer.text)
            assert answer.json()["error"]["type"] == "not_found"
            # exactly what an id that never existed gets: nothing tells the two apart
            made_up = path.replace(job_id, "0" * 32).replace(job["conversation_id"], "0" * 32)
            unknown = as_bob.request(method, made_up)
            assert (unknown.status_code, unknown.text) == (
                404,
                answer.text.replace(job_id, "0" * 32).replace(job["conversation_id"], "0" * 32),
            )
        assert as_bob.get("/api/v1/investigations").json()["items"] == []
        assert as_bob.get("/api/v1/conversations").json() == []

        finished = wait_for_job(as_alice, job_id)
        assert finished["status"] == "succeeded", running.logs()  # bob's cancel did nothing
        assert as_alice.get(conversation).status_code == 200  # nor did his delete
        assert [j["id"] for j in as_alice.get("/api/v1/investigations").json()["items"]] == [job_id]

        # bob asks about a datasource of a project he may not read: the tool says so
        denied: dict[str, Any] = wait_for_job(as_bob, submit(as_bob, "auth-bob-denied"))

    assert denied["status"] == "succeeded", running.logs()
    (step,) = denied["steps"]
    assert step["status"] == "error"
    assert f"no permission on datasource {SHOP}" in step["output"]
    tool_messages = [
        m for m in scripted_model.requests("auth-bob-denied")[1]["messages"] if m["role"] == "tool"
    ]
    assert f"no permission on datasource {SHOP}" in json.dumps(tool_messages)
    assert perses.proxied() == [("alice", 200), ("bob", 403)]


def test_a_hundred_requests_cost_one_perses_call(
    persai_stack: StartStack, perses: RecordingPerses
) -> None:
    running = persai_stack(workers=0, **auth_env(perses))
    carol = login(perses, "carol")
    assert running.api is not None
    api_url = running.api.url

    async def hundred(**client_options: Any) -> list[int]:
        async with httpx.AsyncClient(base_url=api_url, timeout=30, **client_options) as c:
            concurrent = await asyncio.gather(*(c.get("/api/v1/investigations") for _ in range(50)))
            one_by_one = [await c.get("/api/v1/investigations") for _ in range(50)]
        return [answer.status_code for answer in [*concurrent, *one_by_one]]

    assert asyncio.run(hundred(cookies=carol.cookies)) == [200] * 100
    assert perses.count("refresh") == 1
    assert asyncio.run(hundred(headers=bearer(carol.access_token))) == [200] * 100
    assert perses.count("whoami") == 1
    assert perses.count("refresh") == 1

    # what an operator sees of it on /metrics
    exposed = httpx.get(f"{api_url}/metrics").text
    assert (
        metric(exposed, "persai_perses_requests_total", endpoint="/api/auth/refresh", status="200")
        == 1
    )
    assert (
        metric(
            exposed, "persai_perses_requests_total", endpoint="/api/v1/user/whoami", status="200"
        )
        == 1
    )
    hits = metric(exposed, "persai_auth_cache_total", result="hit")
    misses = metric(exposed, "persai_auth_cache_total", result="miss")
    assert hits + misses == 200
    assert hits >= 100  # the one-by-one halves, at least, were answered from the cache


def bad_credentials(perses: PersesStandin) -> list[tuple[str, dict[str, str], list[str]]]:
    """(what, request headers, words the 401 message says) for each way to get it wrong."""
    now = int(time.time())
    alice = perses.issue_tokens("alice")
    cookies = alice.cookies
    header, payload, signature = alice.access_token.split(".")
    claims = {"sub": "alice", "exp": now + 600, "nbf": now, "pkd": "native", "pid": ""}
    expired = perses.sign({**claims, "exp": now - 60, "nbf": now - 960})
    as_bob = forge_token({**claims, "sub": "bob"})
    bob_payload = as_bob.split(".")[1]

    def with_cookies(**changed: str) -> dict[str, str]:
        return cookie_header({**cookies, **changed})

    def split(token: str) -> dict[str, str]:
        head, body, sig = token.split(".")
        return {"jwtPayload": f"{head}.{body}", "jwtSignature": sig}

    return [
        ("no credentials at all", {}, ["not signed in"]),
        ("no refresh cookie", cookie_header(split(alice.access_token)), ["jwtRefreshToken"]),
        (
            "only the refresh cookie",
            cookie_header({"jwtRefreshToken": alice.refresh_token}),
            ["jwtPayload", "jwtSignature"],
        ),
        ("a two-part cookie token", with_cookies(jwtPayload=header), ["header.payload"]),
        (
            "a four-part cookie token",
            with_cookies(jwtPayload=f"{header}.{payload}.{payload}"),
            ["header.payload"],
        ),
        ("a two-part bearer token", bearer(f"{header}.{payload}"), ["3", "not 2"]),
        ("a four-part bearer token", bearer(f"{alice.access_token}.{signature}"), ["not 4"]),
        ("not base64", bearer(f"{header}.{payload}!.{signature}"), ["base64url"]),
        ("not base64 in cookies", with_cookies(jwtPayload=f"{header}.$$$"), ["base64url"]),
        ("a payload that is not JSON", bearer(forge_token("not json")), ["not JSON"]),
        ("a JSON payload that is a list", bearer(forge_token("[1]")), ["JSON object"]),
        (
            "alg none",
            bearer(forge_token(claims, header={"alg": "none"}, signature=b"")),
            ["HS512"],
        ),
        (
            "alg none in cookies",
            with_cookies(jwtPayload=forge_token(claims, header={"alg": "none"}).rsplit(".", 1)[0]),
            ["HS512"],
        ),
        ("an expired bearer token", bearer(expired), ["expired"]),
        # (an expired access cookie beside a valid refresh token is a session Perses renews)
        ("expired refresh cookie", with_cookies(jwtRefreshToken=expired), ["expired"]),
        ("not a Bearer scheme", {"Authorization": f"Basic {alice.access_token}"}, ["Bearer"]),
        (
            "a refresh token Perses rejects",
            with_cookies(jwtRefreshToken=forge_token({**claims, "exp": now + 86_400})),
            ["did not accept the refresh token"],
        ),
        ("cookies naming bob", with_cookies(**split(as_bob)), ["another user"]),
        (
            "a bearer token whose payload names bob",
            bearer(f"{header}.{bob_payload}.{signature}"),
            ["did not accept"],
        ),
    ]


def test_bad_credentials_are_refused_with_a_clear_401(
    persai_stack: StartStack, perses: RecordingPerses
) -> None:
    running = persai_stack(workers=0, **auth_env(perses))
    body = {"question": "Which service is slow?", "datasource": SHOP}
    cases = bad_credentials(perses)
    with running.client() as client:
        for what, headers, words in cases:
            answer = client.post("/api/v1/investigations", json=body, headers=headers)
            assert_refused(answer, 401, "unauthenticated", *words)
            token_parts = {
                part for value in headers.values() for part in value.replace(";", ".").split(".")
            }
            assert not any(len(p) > 20 and p in answer.text for p in token_parts), what

        oversized = {"Cookie": f"jwtPayload={'a' * 9000}; jwtSignature=x; jwtRefreshToken=y"}
        too_big = client.get("/api/v1/investigations", headers=oversized)
        assert_refused(too_big, 400, "invalid_request", "jwtPayload cookie", "8 KiB")
        too_long = client.get("/api/v1/investigations", headers=bearer("a" * 9000))
        assert_refused(too_long, 400, "invalid_request", "Authorization header", "8 KiB")
        huge = client.get(
            "/api/v1/investigations", headers={"Cookie": f"jwtPayload={'a' * 70_000}"}
        )
        assert_refused(huge, 400, "invalid_request", "jwtPayload cookie", "8 KiB")

        # none of these reached a job, and a good cookie still works alongside them
        alice = perses.issue_tokens("alice")
        listed = client.get("/api/v1/investigations", headers=cookie_header(alice.cookies))
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []
    assert "Traceback" not in running.logs()


def test_perses_down_is_a_503_then_recovers(
    persai_stack: StartStack, perses: RecordingPerses
) -> None:
    running = persai_stack(workers=0, **auth_env(perses))
    carol = perses.issue_tokens("carol")
    ways = {"cookies": cookie_header(carol.cookies), "bearer": bearer(carol.access_token)}
    with running.client() as client:
        perses.stop()
        for how, headers in ways.items():
            down = client.get("/api/v1/investigations", headers=headers)
            assert down.status_code == 503, (how, down.text)
            assert down.json()["error"]["type"] == "perses_unavailable"
            assert "Perses cannot be reached" in down.json()["error"]["message"]
            assert down.headers.get("retry-after"), how
        perses.start()
        for how, headers in ways.items():
            back = client.get("/api/v1/investigations", headers=headers)
            assert back.status_code == 200, (how, back.text)  # the outage was not cached

        perses.fail_status = 502
        dave = perses.issue_tokens("dave")  # a refresh token not checked yet
        failing = client.get("/api/v1/investigations", headers=cookie_header(dave.cookies))
        assert failing.status_code == 503, failing.text
        assert "Perses answered HTTP 502" in failing.json()["error"]["message"]
        perses.fail_status = None
        again = client.get("/api/v1/investigations", headers=cookie_header(dave.cookies))
        assert again.status_code == 200, again.text


def test_cors_allows_the_perses_origin_with_credentials_only(
    persai_stack: StartStack, perses: RecordingPerses
) -> None:
    running = persai_stack(workers=0, **auth_env(perses))
    assert "PERSAI_CORS_ORIGINS" not in {**os.environ, **running.env}  # the default is at work
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-stainless-os, x-stainless-lang",
    }
    alice = perses.issue_tokens("alice")
    with running.client() as client:
        allowed = client.options(
            "/api/v1/investigations", headers={"Origin": perses.base_url, **preflight}
        )
        refused = client.options(
            "/api/v1/investigations", headers={"Origin": "http://evil.example", **preflight}
        )
        simple = client.get(
            "/api/v1/investigations",
            headers={"Origin": perses.base_url, **cookie_header(alice.cookies)},
        )
        foreign = client.get(
            "/api/v1/investigations",
            headers={"Origin": "http://evil.example", **cookie_header(alice.cookies)},
        )

    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == perses.base_url
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "x-stainless-os" in allowed.headers["access-control-allow-headers"].lower()
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert simple.headers["access-control-allow-origin"] == perses.base_url
    assert simple.headers["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in foreign.headers


def test_persai_ask_works_against_an_authenticated_persai_with_a_bearer_token(
    persai_stack: StartStack,
    perses: RecordingPerses,
    scripted_model: ScriptedModel,
    incidents: dict[str, Incident],
) -> None:
    latency = incidents["latency_spike"]
    latency_scenario(scripted_model, "auth-ask", latency)
    running = persai_stack(**auth_env(perses))
    alice = login(perses, "alice")
    assert running.api is not None
    argv = [sys.executable, "-m", "persai.cli", "ask", "[scenario:auth-ask] Which service is slow?",
            "-d", SHOP, "--url", running.api.url]  # fmt: skip
    env = {**os.environ, "PERSAI_LOG_LEVEL": "WARNING"}
    refused = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0
    assert "401 unauthenticated" in refused.stderr
    done = subprocess.run(
        argv, env={**env, "PERSAI_TOKEN": alice.access_token},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"The culprit is {latency.truth.culprit_value}." in done.stdout
    assert "→ execute_range_query(" in done.stdout
    assert alice.access_token not in done.stdout + done.stderr
    assert {user for user, _ in perses.proxied()} == {"alice"}
