"""The dashboard of an investigation: Perses's dashboard shape, one panel per range query."""

from datetime import UTC, datetime

import pytest

from persai.dashboards import (
    MAX_PANELS,
    QueryDescriptor,
    build_dashboard,
    dashboard_for,
    descriptors_from_evidence,
    descriptors_from_steps,
    job_descriptors,
)
from persai.errors import Conflict, InvalidRequest
from persai.jobs import Evidence, Step, StepStatus
from tests.support.jobs import SHOP, job_with, range_step

START = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
END = datetime(2026, 1, 1, 11, 30, tzinfo=UTC)


def test_each_successful_range_query_is_a_time_series_panel_over_its_window() -> None:
    instant = Step(call_id="i", tool="execute_instant_query", arguments={}, data={"query": "up"})
    job = job_with(
        range_step("rate(http_requests_total[5m])"),
        range_step("broken(", status=StepStatus.ERROR),
        instant,
        range_step("histogram_quantile(0.99, x)", step_s=14.2),
    )
    found = dashboard_for(job)
    dashboard = found["dashboard"]
    assert dashboard["kind"] == "Dashboard"
    assert dashboard["metadata"] == {"name": "persai-0123456789ab", "project": "shop"}
    spec = dashboard["spec"]
    assert spec["display"]["description"] == "Why is checkout slow?"
    assert spec["duration"] == "1h30m"
    assert list(spec["panels"]) == ["query_0", "query_1"]
    panel = spec["panels"]["query_1"]["spec"]
    assert panel["plugin"]["kind"] == "TimeSeriesChart"
    (query,) = panel["queries"]
    assert query["kind"] == "TimeSeriesQuery"
    assert query["spec"]["plugin"] == {
        "kind": "PrometheusTimeSeriesQuery",
        "spec": {
            "query": "histogram_quantile(0.99, x)",
            "datasource": {"kind": "PrometheusDatasource", "name": "prom"},
            "minStep": "15s",
        },
    }
    (grid,) = spec["layouts"]
    assert grid["kind"] == "Grid"
    refs = [item["content"]["$ref"] for item in grid["spec"]["items"]]
    assert refs == ["#/spec/panels/query_0", "#/spec/panels/query_1"]
    assert [(i["x"], i["y"]) for i in grid["spec"]["items"]] == [(0, 0), (12, 0)]
    start_ms, end_ms = int(START.timestamp() * 1000), int(END.timestamp() * 1000)
    assert spec["links"][0]["url"] == f"?start={start_ms}&end={end_ms}"
    assert found["window"] == {"start": "2026-01-01T10:00:00Z", "end": "2026-01-01T11:30:00Z"}


def test_nothing_to_draw_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="no range query"):
        dashboard_for(job_with(range_step("x(", status=StepStatus.ERROR)))


def test_a_global_datasource_needs_a_project_to_save_in() -> None:
    job = job_with(range_step("up"), datasource="/proxy/globaldatasources/prom")
    with pytest.raises(InvalidRequest, match="which project"):
        dashboard_for(job)
    dashboard = dashboard_for(job, "ops")["dashboard"]
    assert dashboard["metadata"]["project"] == "ops"
    assert dashboard["spec"]["panels"]["query_0"]["spec"]["queries"][0]["spec"]["plugin"]["spec"][
        "datasource"
    ] == {"kind": "PrometheusDatasource", "name": "prom"}


def test_panels_are_bounded_and_laid_out_in_rows() -> None:
    queries = [QueryDescriptor(SHOP, f"q{i}", START, END, 60) for i in range(MAX_PANELS + 5)]
    spec = build_dashboard(name="n", title="t", description="d", queries=queries)["spec"]
    assert len(spec["panels"]) == MAX_PANELS
    items = spec["layouts"][0]["spec"]["items"]
    assert (items[2]["x"], items[2]["y"]) == (0, 8)


def test_steps_without_a_window_are_left_out() -> None:
    odd = Step(call_id="o", tool="execute_range_query", arguments={}, status=StepStatus.OK)
    assert descriptors_from_steps(job_with(odd, range_step("up")))[0].query == "up"
    assert len(descriptors_from_steps(job_with(odd))) == 0


def evidence(query: str, kind: str = "range") -> Evidence:
    start, end = (START, END) if kind == "range" else (END, END)
    step = 30 if kind == "range" else None
    return Evidence(
        tool="execute_range_query" if kind == "range" else "execute_instant_query",
        datasource=SHOP,
        query=query,
        kind=kind,
        start=start,
        end=end,
        step_seconds=step,
    )


def test_evidence_feeds_the_same_panels() -> None:
    (only,) = descriptors_from_evidence([evidence("rate(errors[5m])"), evidence("up", "instant")])
    assert only == QueryDescriptor(SHOP, "rate(errors[5m])", START, END, 30)


def test_an_ended_job_draws_its_evidence_and_a_running_one_its_range_calls() -> None:
    job = job_with(range_step("a"), range_step("b"))
    assert [d.query for d in job_descriptors(job)] == ["a", "b"]
    job.evidence = [evidence("b")]
    assert [d.query for d in job_descriptors(job)] == ["b"]
    job.evidence = [evidence("up", "instant")]
    assert [d.query for d in job_descriptors(job)] == ["a", "b"]


def test_a_datasource_named_without_its_path_is_drawn_by_that_name() -> None:
    queries = [QueryDescriptor("prom", "up", START, END)]
    dashboard = build_dashboard(name="n", title="t", description="d", queries=queries, project="p")
    spec = dashboard["spec"]["panels"]["query_0"]["spec"]["queries"][0]["spec"]["plugin"]["spec"]
    assert spec["datasource"] == {"kind": "PrometheusDatasource", "name": "prom"}
    assert "minStep" not in spec
