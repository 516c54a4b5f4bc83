"""Hostile input, end to end: nothing a client sends makes PersAI answer 5xx or log a traceback.

PersAI's API and a worker run as subprocesses with authentication on, against the Perses
stand-in. First schemathesis sends what the API's own OpenAPI document allows and what it does
not (each operation, bounded in examples), as a signed-in user; then a hand-written suite sends
what no schema can express: odd headers and cookies, hostile tokens, ids that are not ids, time
ranges at and past their bounds, and tool arguments from the model that overflow.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance

from tests.support.auth import StartStack, auth_env, bearer, cookie_header
from tests.support.persai import PersAIStack, wait_for_job
from tests.support.perses import PersesStandin, Tokens, forge_token
from tests.support.prometheus import PrometheusServer
from tests.support.scripted_model import ScriptedModel

SHOP = "/proxy/projects/shop/datasources/prom"
SECRET_KEY = "hostile-inputs-test-sealing-key-of-32-bytes-or-more"
EXAMPLES_PER_OPERATION = 25
"""Hypothesis examples per operation and generation mode: with the documented examples, about 700
requests, sent in about 20 s on two busy cores."""


class LogTail:
    """What PersAI's processes logged since the last look (each log file read once)."""

    def __init__(self, running: PersAIStack) -> None:
        self._running = running
        self._read: dict[Path, int] = {}

    def new(self) -> str:
        processes = [*([self._running.api] if self._running.api else []), *self._running.workers]
        parts = []
        for path in (process.log_path for process in processes):
            with path.open("rb") as log:
                log.seek(self._read.get(path, 0))
                chunk = log.read()
            self._read[path] = self._read.get(path, 0) + len(chunk)
            parts.append(chunk.decode(errors="replace"))
        return "\n".join(parts)

    def assert_no_traceback(self, after: object = "") -> None:
        logged = self.new()
        assert "Traceback" not in logged, f"after {after}:\n{logged[-6000:]}"


@pytest.fixture
def perses(prometheus: PrometheusServer) -> Iterator[PersesStandin]:
    standin = PersesStandin()
    standin.add_user("alice", "alice-password", projects={"shop"})
    standin.add_datasource("prom", prometheus.url, project="shop")
    with standin:
        yield standin


@pytest.fixture
def alice(perses: PersesStandin) -> Tokens:
    return perses.issue_tokens("alice")


@pytest.fixture
def running(persai_stack: StartStack, perses: PersesStandin) -> PersAIStack:
    return persai_stack(**{**auth_env(perses), "PERSAI_SECRET_KEY": SECRET_KEY})


@pytest.fixture
def logs(running: PersAIStack) -> LogTail:
    tail = LogTail(running)
    tail.new()  # start-up is not what is tested
    return tail


# Part one: everything the OpenAPI document describes ---------------------------------------

FUZZ = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,  # no example database: every run sends the same cases afresh
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases on every run: a failure here is reproducible
)


@pytest.mark.timeout(120, func_only=True)  # the fuzzing itself (about 20 s), not the start-up
def test_nothing_the_openapi_document_allows_or_forbids_is_a_server_error(
    running: PersAIStack, alice: Tokens, logs: LogTail
) -> None:
    """Each operation, with what its schema allows (positive) and what it forbids (negative),
    sent as alice: no 5xx, no traceback in any log. (Schemathesis's pytest plugin does not run
    under pytest 9.2, so its strategies are driven with Hypothesis here.)"""
    assert running.api is not None
    schema = schemathesis.openapi.from_url(f"{running.api.url}/openapi.json", timeout=10)
    operations = [result.ok() for result in schema.get_all_operations()]
    statuses: Counter[int] = Counter()

    def send(case: schemathesis.Case) -> None:
        response = case.call(headers=bearer(alice.access_token), timeout=15)
        statuses[response.status_code] += 1
        # every answer is what the document says it is (/metrics was documented as JSON)
        case.validate_response(response, checks=[not_a_server_error, content_type_conformance])
        logs.assert_no_traceback(case.as_curl_command())

    for operation in operations:
        # an operation without parameters or a body has nothing a negative case could break
        takes_input = any(operation.iter_parameters()) or bool(list(operation.body))
        strategies = schema.get_strategies_from_examples(operation)  # the documented examples
        for mode in GenerationMode if takes_input else [GenerationMode.POSITIVE]:
            strategies.append(operation.as_strategy(generation_mode=mode))
        for strategy in strategies:
            FUZZ(given(case=strategy)(send))()

    assert len(operations) >= 15  # every route the document names was fuzzed
    assert sum(statuses.values()) >= len(operations) * EXAMPLES_PER_OPERATION
    for status in (200, 201, 202, 404, 422):  # accepted, refused as malformed, not found
        assert statuses[status], statuses
    assert statuses[401] < sum(statuses.values()) // 10  # signed in: it reached the routes


# Part two: what a schema cannot express ------------------------------------------------------


def _token(header: bytes, payload: bytes) -> str:
    """A JWT-shaped token of any bytes."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{b64(header)}.{b64(payload)}.{b64(bytes(64))}"


def hostile_tokens() -> dict[str, str]:
    future = int(time.time()) + 86_400
    head = b'{"alg":"HS512","typ":"JWT"}'
    return {
        "header nested 3,000 deep": _token(b'{"alg":"HS512","x":' + b"[" * 3000, b"{}"),
        "payload nested 3,000 deep": _token(head, b'{"sub":"alice","x":' + b"[" * 3000),
        "exp NaN": _token(head, b'{"sub":"alice","exp":NaN}'),
        "exp 1e300": _token(head, b'{"sub":"alice","exp":1e300}'),
        "exp Infinity": _token(head, b'{"sub":"alice","exp":Infinity}'),
        "exp of 400 digits": _token(head, b'{"sub":"alice","exp":1' + b"0" * 400 + b"}"),
        "nbf NaN": _token(head, b'{"sub":"alice","exp":%d,"nbf":NaN}' % future),
        "payload not UTF-8": _token(head, b'{"sub":"\xff\xfe","exp":%d}' % future),
        "not base64": "a.b!.c",
        "four parts": forge_token({"sub": "alice", "exp": future}) + ".x",
    }


def _status(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["error"]["type"]


def test_hostile_authorization_headers_and_cookies_are_refused_with_a_4xx(
    running: PersAIStack, perses: PersesStandin, alice: Tokens, logs: LogTail
) -> None:
    unauthenticated = (401, "unauthenticated")
    headers: dict[str, list[tuple[bytes, bytes]]] = {
        f"bearer {name}": [(b"authorization", b"Bearer " + token.encode())]
        for name, token in hostile_tokens().items()
    }
    headers |= {
        "not bearer": [(b"authorization", b"Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ=")],
        "bearer without a token": [(b"authorization", b"Bearer")],
        "non-UTF-8 bearer": [(b"authorization", b"Bearer \xff\xfe\xc3\x28.\x80.\x81")],
        "non-UTF-8 cookie": [(b"cookie", b"jwtPayload=\xff\xfe; jwtSignature=\xc3\x28")],
        "cookie without a value": [(b"cookie", b"jwtPayload; jwtSignature=; =x")],
        "unterminated quoted cookie": [(b"cookie", b'jwtPayload="a.b; jwtRefreshToken=x')],
        "only one cookie": [(b"cookie", b"jwtRefreshToken=" + alice.refresh_token.encode())],
    }
    for name, token in hostile_tokens().items():
        head, _, signature = token.rpartition(".")
        as_access = {"jwtPayload": head, "jwtSignature": signature}
        as_access["jwtRefreshToken"] = alice.refresh_token
        as_refresh = {**alice.cookies, "jwtRefreshToken": token}
        for which, cookies in (("access", as_access), ("refresh", as_refresh)):
            raw = cookie_header(cookies)["Cookie"].encode()
            headers[f"{which} cookie {name}"] = [(b"cookie", raw)]
    too_large = (400, "invalid_request")
    huge = {
        "bearer of 9 KiB": [(b"authorization", b"Bearer " + b"a" * 9216)],
        "refresh cookie of 9 KiB": [(b"cookie", b"jwtRefreshToken=" + b"a" * 9216)],
    }

    with running.client() as client:
        for name, raw in headers.items():
            answer = client.get("/api/v1/investigations", headers=raw)
            assert _status(answer) == unauthenticated, (name, answer.text)
            assert "Traceback" not in answer.text
        for name, raw in huge.items():
            answer = client.get("/api/v1/investigations", headers=raw)
            assert _status(answer) == too_large, (name, answer.text)
        # a Perses session that is fine beside all of it
        fine = client.get("/api/v1/investigations", headers=cookie_header(alice.cookies))
        assert fine.status_code == 200, fine.text
    assert perses.count("whoami") == 0  # none of them was worth asking Perses about
    logs.assert_no_traceback("the hostile headers")


def test_ids_that_are_not_ids_are_the_same_404_as_unknown_ones(
    running: PersAIStack, alice: Tokens, logs: LogTail
) -> None:
    with running.client(headers=bearer(alice.access_token)) as client:
        accepted = client.post("/api/v1/investigations", json={"question": "q", "datasource": SHOP})
        assert accepted.status_code == 202, accepted.text
        job_id, conversation_id = accepted.json()["id"], accepted.json()["conversation_id"]
        wait_for_job(client, job_id)
        not_ids = [
            f"{job_id}:events",  # the job's event stream in Redis: a 500 that told it exists
            f"{job_id}:credentials",
            f"{job_id}:lease",
            f"{conversation_id}:messages",
            job_id.upper(),
            job_id + "0",
            "%00",
            "%C3%A9" * 20,
            "%FF%FE",  # not UTF-8
            "x" * 4000,
        ]
        routes = [
            ("GET", "/api/v1/investigations/{}", "investigation"),
            ("POST", "/api/v1/investigations/{}/cancel", "investigation"),
            ("GET", "/api/v1/investigations/{}/events", "investigation"),
            ("GET", "/api/v1/conversations/{}", "conversation"),
            ("DELETE", "/api/v1/conversations/{}", "conversation"),
            ("DELETE", "/session/{}", "conversation"),
            ("POST", f"/session/{{}}/turn?datasource_path={SHOP}", "conversation"),
        ]
        for method, route, what in routes:
            for not_id in not_ids:
                body = {"message": "q"} if "/turn" in route else None
                answer = client.request(method, route.format(not_id), json=body)
                assert _status(answer) == (404, "not_found"), (method, route, not_id)
                assert answer.json()["error"]["message"].startswith(f"no {what} ")

        # nothing was touched: the job and its conversation are as they were
        assert client.get(f"/api/v1/investigations/{job_id}").json()["status"] == "succeeded"
        assert client.get(f"/api/v1/conversations/{conversation_id}").status_code == 200
    logs.assert_no_traceback("the ids")


OUT_OF_BOUNDS_RANGES: list[tuple[dict[str, Any], str]] = [
    ({"duration": "99999999999999w"}, "is out of range (0 to 3650 days)"),  # was 202, then failed
    ({"duration": "3651d"}, "is out of range (0 to 3650 days)"),
    ({"duration": "0s"}, "longer than 0"),
    ({"start": "0001-01-01T00:00:00+01:00", "end": "2026-01-01T00:00:00Z"}, "1970 to 2200"),
    ({"start": "2026-01-01T00:00:00Z", "end": "9999-12-31T23:59:59-14:00"}, "1970 to 2200"),
    ({"start": 1e20, "end": "2026-01-01T00:00:00Z"}, "time_range.start"),
    ({"start": "NaN", "end": "2026-01-01T00:00:00Z"}, "time_range.start"),
    # zone-less against zoned used to compare naive with aware datetimes: a TypeError, a 500
    ({"start": "2026-01-01T02:00:00", "end": "2026-01-01T02:00:00+01:00"}, "before end"),
]


def test_time_ranges_out_of_bounds_are_422_saying_what_is_accepted(
    running: PersAIStack, alice: Tokens, logs: LogTail
) -> None:
    with running.client(headers=bearer(alice.access_token)) as client:
        for time_range, expected in OUT_OF_BOUNDS_RANGES:
            body = {"question": "q", "datasource": SHOP, "time_range": time_range}
            answer = client.post("/api/v1/investigations", json=body)
            assert _status(answer) == (422, "validation_error"), (time_range, answer.text)
            assert expected in answer.json()["error"]["message"], time_range
        assert client.get("/api/v1/investigations").json()["total"] == 0  # none was queued
    logs.assert_no_traceback("the time ranges")


def test_a_range_mixing_zoned_and_unzoned_times_and_tool_arguments_that_overflow_end_well(
    running: PersAIStack, alice: Tokens, scripted_model: ScriptedModel, logs: LogTail
) -> None:
    """A time range with one time zoned and one not (a 500 before), and a model whose tool
    arguments overflow every time and number (the job failed with "internal error" before):
    the investigation succeeds, each bad call handed back to the model as a tool error."""
    calls = [
        {"name": "execute_range_query", "arguments": {"query": "up", "start": "1e20"}},
        {
            "name": "execute_range_query",
            "arguments": {"query": "up", "duration": "99999999999999w"},
        },
        {"name": "execute_range_query", "arguments": {"query": "up", "step": "1e20"}},
        {"name": "execute_instant_query", "arguments": {"query": "up", "time": "now-99999999d"}},
        {"name": "execute_instant_query", "arguments": {"query": "up", "time": "nan"}},
    ]
    scripted_model.add_scenario("hostile-tool-arguments", [{"tool_calls": calls}, {"text": "ok"}])
    span = {"start": "2026-01-01T10:00:00", "end": "2026-01-01T12:00:00+01:00"}
    question = "[scenario:hostile-tool-arguments] What is up?"
    body = {"question": question, "datasource": SHOP, "time_range": span}

    with running.client(headers=bearer(alice.access_token)) as client:
        accepted = client.post("/api/v1/investigations", json=body)
        assert accepted.status_code == 202, accepted.text
        job = wait_for_job(client, accepted.json()["id"])

    assert job["status"] == "succeeded", job
    assert job["time_range"] == {
        "start": "2026-01-01T10:00:00Z",
        "end": "2026-01-01T11:00:00Z",
        "duration": None,
    }
    steps: Any = job["steps"]
    assert [step["status"] for step in steps] == ["error"] * len(calls)
    assert all("out of range" in step["output"] for step in steps), steps
    logs.assert_no_traceback("the hostile tool arguments")
