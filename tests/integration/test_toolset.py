"""Every tool against a real Prometheus (incidents, rules) behind the real Perses stand-in.

The datasources are saved as the Perses UI saves them (its default allowedEndpoints), except
OPEN, saved through the API without the list, where the alert and rule endpoints are allowed.

The tools are called the way the worker calls them (a Toolbox, JSON arguments, a ToolContext on
UpstreamAPI with the user's bearer token), without a model: what is asserted is what the model
would read. The last test goes through every process with a scripted model.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from persai.agent.results import estimate_tokens
from persai.agent.tools import ALL_TOOLS, Toolbox, ToolContext, ToolError, ToolOutput, UpstreamAPI
from persai.agent.tools.perses import NOT_CONFIGURED
from persai.incidents import Incident
from persai.jobs import TimeRange
from tests.support.httpd import tools_session
from tests.support.persai import PersAIStack, wait_for_job
from tests.support.perses import PersesStandin
from tests.support.prometheus import PrometheusServer
from tests.support.scripted_model import ScriptedModel

BUDGET = 1500
SHOP = "/proxy/projects/shop/datasources/prom"
GLOBAL = "/proxy/globaldatasources/prom"
LAB = "/proxy/projects/lab/datasources/metrics"
OPEN = "/proxy/projects/shop/datasources/open"
LOCAL = "/proxy/projects/shop/dashboards/checkout/datasources/local"
RULES = """
groups:
  - name: persai-test
    rules:
      - alert: AlwaysFiring
        expr: vector(1) > 0
        labels: {severity: page}
        annotations: {summary: "Fires all the time, for tests"}
      - record: scenario:series:count
        expr: count by (scenario) ({scenario!=""})
"""


class StaticTokens:
    """The user's access token, as the worker's credentials would give it."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def bearer(self) -> str:
        return self.token

    async def refresh(self) -> str:
        return self.token


@pytest.fixture(scope="module")
def rules_prometheus(
    tmp_path_factory: pytest.TempPathFactory, incidents: dict[str, Incident]
) -> Iterator[PrometheusServer]:
    """Prometheus with every incident, an alert that always fires, a recording rule, and its
    own metrics scraped (for metadata); ready once the alert fires and metadata exists."""
    from persai.incidents import to_openmetrics

    server = PrometheusServer.start(
        tmp_path_factory.mktemp("prometheus-rules"),
        openmetrics=to_openmetrics(incidents.values()),
        rule_files={"rules.yml": RULES},
        scrape_self=True,
    )
    try:
        _wait_until(lambda: _firing(server.url) and _has_metadata(server.url))
        yield server
    finally:
        server.stop()


def _wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("Prometheus did not get ready for the toolset tests")
        time.sleep(0.2)


def _firing(url: str) -> bool:
    alerts = httpx.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return any(
        a["labels"]["alertname"] == "AlwaysFiring" and a["state"] == "firing" for a in alerts
    )


def _has_metadata(url: str) -> bool:
    params = {"metric": "prometheus_build_info"}
    return bool(httpx.get(f"{url}/api/v1/metadata", params=params, timeout=5).json()["data"])


@pytest.fixture(scope="module")
def perses(
    rules_prometheus: PrometheusServer, incidents: dict[str, Incident]
) -> Iterator[PersesStandin]:
    standin = PersesStandin()
    standin.add_user("alice", "alice-password", projects={"shop"})
    standin.add_user("bob", "bob-password", projects={"lab"}, global_ds=False)
    standin.add_datasource("prom", rules_prometheus.url)
    standin.add_datasource("prom", rules_prometheus.url, project="shop")
    standin.add_datasource("metrics", rules_prometheus.url, project="lab")
    standin.add_datasource("open", rules_prometheus.url, project="shop", allowed_endpoints=None)
    standin.add_dashboard(
        "shop",
        "checkout",
        datasource="prom",
        local_datasources={"local": rules_prometheus.url},
        panels={
            "p99 latency": incidents["latency_spike"].truth.query,
            "5xx by endpoint": incidents["error_burst"].truth.query,
            "Memory": incidents["memory_leak"].truth.query,
        },
    )
    standin.add_dashboard("lab", "sandbox", datasource="metrics", panels={"Up": "up"})
    with standin:
        yield standin


@dataclass
class Caller:
    perses: PersesStandin
    window: TimeRange

    def __call__(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        user: str = "alice",
        datasource: str = SHOP,
        with_perses: bool = True,
        budget: int = BUDGET,
    ) -> ToolOutput:
        async def run() -> ToolOutput:
            tokens = StaticTokens(self.perses.issue_tokens(user).access_token)
            async with tools_session(read_timeout_s=20) as session:

                def api(path: str, label: str) -> UpstreamAPI:
                    url = self.perses.base_url + path
                    return UpstreamAPI(
                        session, url, label=label, tokens=tokens, max_bytes=20_000_000
                    )

                context = ToolContext(
                    prometheus=api(datasource, datasource),
                    now=datetime.now(UTC),
                    budget_tokens=budget,
                    time_range=self.window,
                    perses=api("", "Perses") if with_perses else None,
                )
                toolbox = Toolbox(ALL_TOOLS, timeout_s=20)
                return await toolbox.call(context, name, json.dumps(arguments))

        output = asyncio.run(run())
        assert estimate_tokens(output.text) <= budget, output.text
        return output

    def error(self, name: str, arguments: dict[str, Any], **kwargs: Any) -> str:
        with pytest.raises(ToolError) as caught:
            self(name, arguments, **kwargs)
        return str(caught.value)


@pytest.fixture(scope="module")
def call(perses: PersesStandin, incidents: dict[str, Incident]) -> Caller:
    params = next(iter(incidents.values())).params
    return Caller(perses, TimeRange(start=params.start, end=params.end))


# Prometheus: discovery ----------------------------------------------------------------------


def test_list_metrics_names_the_incident_metrics(call: Caller) -> None:
    everything = call("list_metrics", {})
    assert "process_resident_memory_bytes" in everything.text
    assert "http_request_duration_seconds_bucket" in everything.text
    assert everything.data
    assert everything.data["count"] >= 10

    found = call("list_metrics", {"search": "MEMORY|cfs", "match": '{namespace="shop"}'})
    assert found.text.splitlines()[1:] == [
        "2 metric names:",
        "container_cpu_cfs_throttled_periods_total",
        "process_resident_memory_bytes",
    ]
    assert "containing /MEMORY|cfs/" in found.text


def test_list_metrics_without_a_match_says_how_to_widen(call: Caller) -> None:
    out = call("list_metrics", {"search": "no_such_metric_anywhere"})
    assert "No metric names found. Try a broader search" in out.text


def test_label_names_and_values(call: Caller, incidents: dict[str, Incident]) -> None:
    names = call("list_label_names", {"match": "http_request_duration_seconds_bucket"})
    assert {"le", "service", "scenario"} <= set(names.text.splitlines())

    values = call("list_label_values", {"label": "service", "match": '{scenario="latency_spike"}'})
    assert incidents["latency_spike"].truth.culprit_value in values.text
    assert values.data
    assert values.data["count"] == 50

    searched = call("list_label_values", {"label": "instance", "search": r"10\.0\.0\.26:"})
    assert searched.text.splitlines()[1:] == ["1 values of label instance:", "10.0.0.26:9100"]


def test_find_series_summarises_a_high_cardinality_metric(call: Caller) -> None:
    out = call("find_series", {"match": 'ingest_queue_depth{scenario="high_cardinality"}'})
    assert re.search(r"^\d{4} series:$", out.text, re.MULTILINE)
    assert "Labels that vary: queue (1" in out.text
    assert re.search(
        r"Not shown: \d+ more series \(of \d+\)\. Hint: count them per queue", out.text
    )


def test_metadata_of_a_scraped_metric_and_a_backfilled_one(call: Caller) -> None:
    scraped = call("get_metric_metadata", {"metric": "prometheus_http_requests_total"})
    assert "prometheus_http_requests_total (counter)" in scraped.text
    backfilled = call("get_metric_metadata", {"metric": "ingest_queue_depth"})
    assert "No metadata entries for ingest_queue_depth found" in backfilled.text
    assert "keeps metadata only for metrics it scrapes" in backfilled.text
    everything = call("get_metric_metadata", {})
    assert "Not shown:" in everything.text


# Prometheus: queries ------------------------------------------------------------------------


def test_instant_query_reads_a_value(call: Caller, incidents: dict[str, Incident]) -> None:
    end = incidents["high_cardinality"].params.end
    query = 'count(ingest_queue_depth{scenario="high_cardinality"})'
    now = call("execute_instant_query", {"query": query, "time": "now-1m"})
    assert now.data
    assert now.data["result_type"] == "vector"
    assert now.data["time"].endswith("Z")
    # by default at the end of the dashboard's range (the incidents' end)
    default = call("execute_instant_query", {"query": query})
    assert default.data
    assert default.data["time"] == end.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert re.search(r"^\{\} 1\d{3}$", default.text, re.MULTILINE)


def test_range_query_names_the_culprit(call: Caller, incidents: dict[str, Incident]) -> None:
    leak = incidents["memory_leak"]
    out = call("execute_range_query", {"query": leak.truth.query})
    assert leak.truth.culprit_value in out.text.split("Stand out")[1].splitlines()[1]
    assert out.data
    assert out.data["step_s"] == 30.0
    assert out.data["start"] == leak.params.start.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_promql_errors_come_back_with_prometheus_message(call: Caller) -> None:
    message = call.error("execute_instant_query", {"query": "sum(rate(x[5m])"})
    assert "Prometheus rejected the request (bad_data)" in message
    assert "parse error" in message
    assert "fix the PromQL" in message


def test_no_data_comes_with_a_hint(call: Caller) -> None:
    out = call("execute_range_query", {"query": "no_such_metric", "duration": "30m"})
    assert "No data: the query matched no series" in out.text


# Prometheus: alerts and rules ---------------------------------------------------------------


def test_alerts_and_rules(call: Caller) -> None:
    alerts = call("list_alerts", {}, datasource=OPEN)
    assert re.search(
        r'^AlwaysFiring\{severity="page"\} firing since \d{4}-\d\d-\d\dT[\d:]+Z, value 1: '
        "Fires all the time",
        alerts.text,
        re.MULTILINE,
    )
    assert alerts.data
    assert alerts.data["firing"] == 1
    assert "No pending alerts found" in call("list_alerts", {"state": "pending"}).text

    records = call("list_rules", {"type": "record"}, datasource=OPEN)
    assert records.text.splitlines() == [
        "1 recording rules:",
        'record scenario:series:count (group persai-test): count by (scenario) ({scenario!=""}); '
        "health ok",
    ]
    alerting = call("list_rules", {"type": "alert"}, datasource=OPEN).text
    assert "alert AlwaysFiring (group persai-test): vector(1) > 0; firing, 1 active" in alerting


def test_alerts_and_rules_where_the_perses_ui_allows_neither(call: Caller) -> None:
    """The UI's allowedEndpoints refuse /api/v1/alerts and /api/v1/rules: the alerts come from
    the ALERTS series through the query endpoint, and the rules are refused for what it is."""
    alerts = call("list_alerts", {})
    assert alerts.text.splitlines()[0].startswith("Read from the ALERTS series")
    assert re.search(r'^AlwaysFiring\{severity="page"\} firing', alerts.text, re.MULTILINE)
    assert alerts.data
    assert alerts.data["firing"] == 1

    refused = call.error("list_rules", {})
    assert f"the Perses configuration of datasource {SHOP} does not allow GET /api/v1/rules" in (
        refused
    )
    assert "not a permission problem" in refused
    assert "no permission" not in refused


def test_every_call_uses_a_method_the_ui_configured_datasource_allows(
    call: Caller, perses: PersesStandin
) -> None:
    perses.forwarded.clear()
    for name, arguments in [
        ("list_metrics", {"search": "memory"}),
        ("list_label_names", {}),
        ("list_label_values", {"label": "service"}),
        ("find_series", {"match": "up"}),
        ("get_metric_metadata", {"metric": "prometheus_http_requests_total"}),
        ("execute_instant_query", {"query": "up"}),
        ("execute_range_query", {"query": "up", "duration": "10m"}),
        ("list_alerts", {}),
    ]:
        assert call(name, arguments).text
    assert sorted(set(perses.forwarded)) == [
        ("GET", "/api/v1/label/__name__/values"),
        ("GET", "/api/v1/label/service/values"),
        ("GET", "/api/v1/metadata"),
        ("POST", "/api/v1/labels"),
        ("POST", "/api/v1/query"),
        ("POST", "/api/v1/query_range"),
        ("POST", "/api/v1/series"),
    ]


def test_a_dashboards_own_datasource(call: Caller, incidents: dict[str, Incident]) -> None:
    leak = incidents["memory_leak"]
    out = call("execute_range_query", {"query": leak.truth.query}, datasource=LOCAL)
    assert leak.truth.culprit_value in out.text
    # the dashboard's spec.datasources, not the project datasource of the same name
    other = LOCAL.replace("/local", "/prom")
    message = call.error("execute_instant_query", {"query": "up"}, datasource=other)
    assert "has no such endpoint or resource (HTTP 404)" in message


# Permissions -------------------------------------------------------------------------------


def test_a_datasource_the_user_may_not_read(call: Caller) -> None:
    message = call.error("list_metrics", {}, user="bob", datasource=SHOP)
    assert f"no permission on datasource {SHOP} (HTTP 403)" in message
    assert call("list_label_names", {}, user="bob", datasource=LAB).data


# Perses ------------------------------------------------------------------------------------


def test_datasources_visible_to_each_user(call: Caller) -> None:
    alice = call("list_datasources", {}).text
    assert f"{SHOP}: PrometheusDatasource, the datasource of this investigation" in alice
    assert f"{GLOBAL}: PrometheusDatasource" in alice
    assert LAB not in alice

    bob = call("list_datasources", {}, user="bob", datasource=LAB).text
    assert f"{LAB}: PrometheusDatasource, the datasource of this investigation" in bob
    assert SHOP not in bob
    assert "Not read: the user has no permission to read the global datasources" in bob


def test_dashboards_and_their_panels(call: Caller, incidents: dict[str, Incident]) -> None:
    listed = call("list_dashboards", {}).text
    assert "shop/checkout" in listed
    assert "lab/sandbox" not in listed

    out = call("get_dashboard", {"project": "shop", "dashboard": "checkout"})
    latency = incidents["latency_spike"].truth.query
    assert '- "p99 latency" (TimeSeriesChart)' in out.text
    assert f"    PrometheusTimeSeriesQuery on prom: {latency}" in out.text
    assert out.data
    assert [p["title"] for p in out.data["panels"]] == [
        "p99 latency",
        "5xx by endpoint",
        "Memory",
    ]
    assert out.data["panels"][2]["queries"][0]["query"] == incidents["memory_leak"].truth.query

    one = call("get_dashboard", {"project": "shop", "dashboard": "checkout", "panel": "MEM"})
    assert one.text.count('- "') == 1


def test_perses_refusals_and_absences(call: Caller) -> None:
    refused = call.error("get_dashboard", {"project": "shop", "dashboard": "checkout"}, user="bob")
    assert refused == (
        "the user has no permission to read dashboard checkout in project shop in Perses (HTTP 403)"
    )
    missing = call.error("get_dashboard", {"project": "shop", "dashboard": "nope"})
    assert missing == "Perses has no dashboard nope in project shop (HTTP 404); check the name"
    alone = call.error("list_dashboards", {}, with_perses=False)
    assert alone == NOT_CONFIGURED


# End to end --------------------------------------------------------------------------------


def test_the_model_discovers_then_queries_and_quotes_the_value(
    persai_stack: Callable[..., PersAIStack],
    scripted_model: ScriptedModel,
    prometheus: PrometheusServer,
    incidents: dict[str, Incident],
) -> None:
    """list_metrics, then execute_instant_query; the answer quotes the value from the result."""
    moment = incidents["high_cardinality"].params.end.strftime("%Y-%m-%dT%H:%M:%SZ")
    query = 'count(ingest_queue_depth{scenario="high_cardinality"})'
    expected = httpx.get(
        f"{prometheus.url}/api/v1/query", params={"query": query, "time": moment}, timeout=10
    ).json()["data"]["result"][0]["value"][1]
    scripted_model.add_scenario(
        "toolset",
        [
            {"tool_calls": [{"name": "list_metrics", "arguments": {"search": "queue"}}]},
            {
                "tool_calls": [
                    {"name": "execute_instant_query", "arguments": {"query": query, "time": moment}}
                ]
            },
            {"text": "There are {match} queues.", "match": r"(?m)^\{\} (\d+)$"},
        ],
    )
    running = persai_stack()
    with running.client() as client:
        submitted = client.post(
            "/api/v1/investigations",
            json={"question": "[scenario:toolset] How many queues?", "datasource": GLOBAL},
        )
        assert submitted.status_code == 202, submitted.text
        job = wait_for_job(client, submitted.json()["id"])
    assert job["status"] == "succeeded", running.logs()
    assert job["answer"] == f"There are {expected} queues."
    listed, queried = job["steps"]
    assert (listed["tool"], listed["status"]) == ("list_metrics", "ok")
    assert "ingest_queue_depth" in listed["output"]
    assert (queried["tool"], queried["status"]) == ("execute_instant_query", "ok")
    assert queried["data"] == {
        "query": query,
        "time": moment,
        "result_type": "vector",
        "series": 1,
        "findings": [],  # one series: nothing to stand out from
    }
