"""The query tools: times resolved in UTC, steps chosen, errors the model can act on."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from persai.agent.tools import ALL_TOOLS, PERSES_TOOLS, PROMETHEUS_TOOLS
from persai.agent.tools.prometheus import execute_range_query
from persai.jobs import TimeRange
from tests.support.tools import NOW, Fake, call, error

EMPTY_MATRIX = {"resultType": "matrix", "result": []}
EMPTY_VECTOR = {"resultType": "vector", "result": []}


def _param(fake: Fake, path: str, name: str) -> str:
    (params,) = fake.params(path)
    return dict(params)[name]


def test_the_toolset_names() -> None:
    assert [t.name for t in ALL_TOOLS] == [
        "execute_range_query",
        "execute_instant_query",
        "list_metrics",
        "list_label_names",
        "list_label_values",
        "find_series",
        "get_metric_metadata",
        "list_alerts",
        "list_rules",
        "list_datasources",
        "list_dashboards",
        "get_dashboard",
    ]
    assert set(ALL_TOOLS) == {*PROMETHEUS_TOOLS, *PERSES_TOOLS}


def test_range_query_keeps_the_argument_names_the_perses_plugin_draws() -> None:
    schema = execute_range_query.schema()
    assert set(schema["properties"]) == {"query", "start", "end", "duration", "step"}
    assert schema["required"] == ["query"]


def test_range_query_without_a_step_bounds_the_points_per_series() -> None:
    fake = Fake().prometheus("/api/v1/query_range", EMPTY_MATRIX)
    out = call(fake, "execute_range_query", {"query": "up", "duration": "6h"})
    # 6 h in at most 250 points: 87 s is needed, 120 s is the next nice step
    assert _param(fake, "/api/v1/query_range", "step") == "120.0"
    # form-encoded POST, as a datasource configured in the Perses UI allows
    assert fake.methods("/api/v1/query_range") == ["POST"]
    assert out.data == {
        "query": "up",
        "start": "2026-11-24T08:00:00Z",
        "end": "2026-11-24T14:00:00Z",
        "step_s": 120.0,
        "series": 0,
        "findings": [],
    }
    assert "Range from 2026-11-24T08:00:00Z to 2026-11-24T14:00:00Z, step 2m." in out.text
    assert "No data: the query matched no series in this range." in out.text


def test_times_with_offsets_and_relative_times_resolve_to_utc() -> None:
    fake = Fake().prometheus("/api/v1/query_range", EMPTY_MATRIX)
    arguments = {"query": "up", "start": "2026-11-24T15:00:00+02:00", "end": "now-30m"}
    out = call(fake, "execute_range_query", arguments)
    assert out.data is not None
    assert (out.data["start"], out.data["end"]) == ("2026-11-24T13:00:00Z", "2026-11-24T13:30:00Z")
    assert _param(fake, "/api/v1/query_range", "start") == str(NOW.timestamp() - 3600)


def test_range_query_defaults_to_the_dashboard_range() -> None:
    fake = Fake().prometheus("/api/v1/query_range", EMPTY_MATRIX)
    out = call(fake, "execute_range_query", {"query": "up"}, time_range=TimeRange(duration="3h"))
    assert out.data is not None
    assert out.data["start"] == "2026-11-24T11:00:00Z"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"query": "up", "start": "now-1h", "end": "now-2h"}, "must be before end"),
        ({"query": "up", "step": "0s"}, "step must be positive"),
        ({"query": "up", "step": "soon"}, "not a duration: 'soon'"),
        ({"query": "up", "start": "yesterday"}, "not a time: 'yesterday'"),
    ],
)
def test_bad_times_are_explained(arguments: dict[str, str], message: str) -> None:
    assert message in error(Fake(), "execute_range_query", arguments)


def test_instant_query_at_the_end_of_the_dashboard_range_else_now() -> None:
    fake = Fake().prometheus("/api/v1/query", EMPTY_VECTOR)
    span = TimeRange(start=NOW.replace(hour=9), end=NOW.replace(hour=10))
    at_end = call(fake, "execute_instant_query", {"query": "up"}, time_range=span)
    assert at_end.data is not None
    assert at_end.data["time"] == "2026-11-24T10:00:00Z"
    now = call(fake, "execute_instant_query", {"query": "up"})
    assert now.data == {
        "query": "up",
        "time": "2026-11-24T14:00:00Z",
        "result_type": "vector",
        "series": 0,
        "findings": [],
    }
    assert "No data: the query matched no series at this time." in now.text


def test_instant_query_lists_values_and_summarises_many() -> None:
    result = [
        {"metric": {"job": "api", "pod": f"p{i:04}"}, "value": [NOW.timestamp(), str(i % 10)]}
        for i in range(1000)
    ]
    result[500]["value"][1] = "9000"
    fake = Fake().prometheus("/api/v1/query", {"resultType": "vector", "result": result})
    out = call(fake, "execute_instant_query", {"query": "x", "time": "now-5m"}, budget=600)
    assert "At 2026-11-24T13:55:00Z." in out.text
    assert '{pod="p0500"} 9000' in out.text
    assert "Not shown:" in out.text
    assert out.data is not None
    assert out.data["series"] == 1000
    # what a notification shows of it: the one value far from the others, and nothing else
    assert out.data["findings"] == ['{pod="p0500"} is 9000 (median of all: 5)']


def test_a_promql_syntax_error_comes_back_with_prometheus_message() -> None:
    body = {
        "status": "error",
        "errorType": "bad_data",
        "error": 'invalid parameter "query": 1:15: parse error: unclosed left parenthesis',
    }
    fake = Fake().on("/proxy/projects/shop/datasources/prom/api/v1/query", body, status=400)
    assert error(fake, "execute_instant_query", {"query": "sum(rate(x[5m])"}) == (
        'Prometheus rejected the request (bad_data): invalid parameter "query": 1:15: parse '
        "error: unclosed left parenthesis; fix the PromQL or the parameters and try again"
    )


def test_a_query_prometheus_gave_up_on_asks_for_less() -> None:
    body = {"status": "error", "errorType": "timeout", "error": "query timed out"}
    fake = Fake().on("/proxy/projects/shop/datasources/prom/api/v1/query_range", body, status=503)
    message = error(fake, "execute_range_query", {"query": "x"})
    assert message.startswith("Prometheus rejected the request (timeout): query timed out; ")
    assert "sum by (...) / topk()" in message


def test_a_slow_proxy_is_a_timeout_the_model_can_act_on() -> None:
    async def slow(_request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(2)
        return httpx.Response(200, json={})

    fake = Fake().handle("/proxy/projects/shop/datasources/prom/api/v1/query", slow)
    message = error(fake, "execute_instant_query", {"query": "x"}, read_timeout_s=0.3)
    assert (
        message == "/proxy/projects/shop/datasources/prom did not answer in time; narrow the query"
    )


def test_no_permission_on_the_datasource() -> None:
    fake = Fake().on(
        "/proxy/projects/shop/datasources/prom/api/v1/query",
        {"message": "missing 'read' permission in 'shop' project for 'Datasource' kind"},
        status=403,
    )
    message = error(fake, "execute_instant_query", {"query": "up"})
    assert message.startswith("no permission on datasource /proxy/projects/shop/datasources/prom")


def test_prometheus_warnings_are_shown_within_the_budget() -> None:
    warning = "PromQL info: metric might not be a counter, name does not end in _total " * 20
    fake = Fake().prometheus("/api/v1/query", EMPTY_VECTOR, warnings=[warning])
    out = call(fake, "execute_instant_query", {"query": "rate(x[5m])"}, budget=200)
    assert "Prometheus warnings: PromQL info: metric might not be a counter" in out.text


def test_a_scalar_result() -> None:
    fake = Fake().prometheus(
        "/api/v1/query", {"resultType": "scalar", "result": [NOW.timestamp(), "42"]}
    )
    out = call(fake, "execute_instant_query", {"query": "scalar(x)"})
    assert "Scalar at 2026-11-24T14:00:00Z: 42" in out.text
    assert out.data is not None
    assert out.data["series"] is None


def test_an_answer_that_is_not_prometheus_json() -> None:
    fake = Fake().handle(
        "/proxy/projects/shop/datasources/prom/api/v1/query",
        lambda _r: httpx.Response(502, text="<html>Bad Gateway</html>"),
    )
    message = error(fake, "execute_instant_query", {"query": "up"})
    assert (
        message
        == "/proxy/projects/shop/datasources/prom answered HTTP 502: <html>Bad Gateway</html>"
    )


def test_a_datasource_that_is_not_prometheus() -> None:
    fake = Fake().on("/proxy/projects/shop/datasources/prom/api/v1/query", {"traces": []})
    assert error(fake, "execute_instant_query", {"query": "up"}) == (
        "/proxy/projects/shop/datasources/prom did not answer like the Prometheus HTTP API; is it "
        "a Prometheus datasource?"
    )
