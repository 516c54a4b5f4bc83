"""Perses tools on dashboards shaped like real Perses ones (rows, variables, datasource refs)."""

from __future__ import annotations

import re
from typing import Any

from persai.agent.tools.perses import MAX_PROJECTS, NOT_CONFIGURED
from tests.support.tools import DATASOURCE, Fake, call, error

DASHBOARD = "/api/v1/projects/shop/dashboards/checkout"


def _query(promql: str, datasource: Any = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"query": promql}
    if datasource is not None:
        spec["datasource"] = datasource
    plugin = {"kind": "PrometheusTimeSeriesQuery", "spec": spec}
    return {"kind": "TimeSeriesQuery", "spec": {"plugin": plugin}}


def _panel(title: str, kind: str, *queries: dict[str, Any], **display: str) -> dict[str, Any]:
    return {
        "kind": "Panel",
        "spec": {
            "display": {"name": title, **display},
            "plugin": {"kind": kind, "spec": {}},
            "queries": list(queries),
        },
    }


def _row(title: str, *keys: str) -> dict[str, Any]:
    items = [
        {"x": 12 * (i % 2), "y": 6 * (i // 2), "width": 12, "height": 6,
         "content": {"$ref": f"#/spec/panels/{key}"}}
        for i, key in enumerate(keys)
    ]  # fmt: skip
    return {"kind": "Grid", "spec": {"display": {"title": title}, "items": items}}


def _dashboard() -> dict[str, Any]:
    panels = {
        "latency": _panel(
            "p99 latency",
            "TimeSeriesChart",
            _query(
                'histogram_quantile(0.99, sum by (le) (rate(http_seconds_bucket{job="$job"}'
                "[$__rate_interval])))",
                {"kind": "PrometheusDatasource", "name": "local"},
            ),
            description="Slowest requests",
        ),
        "errors": _panel(
            "Errors",
            "StatChart",
            _query('sum(rate(http_requests_total{code=~"5.."}[5m]))', "$ds"),
            _query("sum(rate(http_requests_total[5m]))"),
        ),
        "notes": _panel("Notes", "Markdown"),
        "orphan": _panel("Not in any layout", "TimeSeriesChart", _query("up")),
    }
    variables = [
        {
            "kind": "ListVariable",
            "spec": {
                "name": "job",
                "defaultValue": "api",
                "plugin": {
                    "kind": "PrometheusLabelValuesVariable",
                    "spec": {"labelName": "job", "matchers": ["up"]},
                },
            },
        },
        {"kind": "TextVariable", "spec": {"name": "env", "value": "prod"}},
    ]
    spec = {
        "display": {"name": "Checkout overview"},
        "duration": "6h",
        "datasources": {"local": {"default": False, "plugin": {"kind": "PrometheusDatasource"}}},
        "variables": variables,
        "panels": panels,
        "layouts": [_row("Traffic", "errors", "latency"), _row("Docs", "notes")],
    }
    meta = {"name": "checkout", "project": "shop"}
    return {"kind": "Dashboard", "metadata": meta, "spec": spec}


def test_a_dashboard_explained_panel_by_panel_in_layout_order() -> None:
    fake = Fake().on(DASHBOARD, _dashboard())
    out = call(fake, "get_dashboard", {"project": "shop", "dashboard": "checkout"})
    assert out.text.splitlines() == [
        'Dashboard shop/checkout "Checkout overview", default time range the last 6h.',
        "Datasources defined in the dashboard: local.",
        "Variables (substitute them before running a query; $__rate_interval and $__interval "
        "are Perses built-ins, e.g. 5m): $job: values of label job in up, default api; "
        '$env = "prod" (text)',
        f"This investigation queries {DATASOURCE}.",
        "4 panels:",
        '- "Errors" (StatChart) in row "Traffic"',
        "    PrometheusTimeSeriesQuery on datasource variable $ds: sum(rate(http_requests_total"
        '{code=~"5.."}[5m]))',
        "    PrometheusTimeSeriesQuery on the default datasource: sum(rate(http_requests_total"
        "[5m]))",
        '- "p99 latency" (TimeSeriesChart) in row "Traffic": Slowest requests',
        "    PrometheusTimeSeriesQuery on local (defined in this dashboard): histogram_quantile("
        '0.99, sum by (le) (rate(http_seconds_bucket{job="$job"}[$__rate_interval])))',
        '- "Notes" (Markdown) in row "Docs"',
        "    no queries",
        '- "Not in any layout" (TimeSeriesChart)',
        "    PrometheusTimeSeriesQuery on the default datasource: up",
    ]
    assert out.data is not None
    assert [p["title"] for p in out.data["panels"]] == [
        "Errors",
        "p99 latency",
        "Notes",
        "Not in any layout",
    ]
    assert out.data["panels"][0]["queries"][0] == {
        "kind": "PrometheusTimeSeriesQuery",
        "query": 'sum(rate(http_requests_total{code=~"5.."}[5m]))',
        "datasource": "datasource variable $ds",
    }
    assert out.data["duration"] == "6h"


def test_one_panel_by_part_of_its_title() -> None:
    fake = Fake().on(DASHBOARD, _dashboard())
    arguments = {"project": "shop", "dashboard": "checkout", "panel": "LATENCY"}
    out = call(fake, "get_dashboard", arguments)
    assert '1 panels with "LATENCY" in their title:' in out.text
    assert out.text.count('\n- "') == 1
    none = call(fake, "get_dashboard", {**arguments, "panel": "cpu"})
    assert 'No panels with "cpu" in their title found. Call again without `panel`' in none.text


def test_a_huge_dashboard_fits_the_budget_and_says_what_was_left_out() -> None:
    dashboard = _dashboard()
    dashboard["spec"]["panels"] = {
        f"p{i}": _panel(f"Panel {i}", "TimeSeriesChart", _query(f"metric_{i}{{job='x'}}"))
        for i in range(200)
    }
    dashboard["spec"]["layouts"] = [_row("All", *dashboard["spec"]["panels"])]
    out = call(Fake().on(DASHBOARD, dashboard), "get_dashboard",
               {"project": "shop", "dashboard": "checkout"}, budget=500)  # fmt: skip
    found = re.search(r"Not shown: (\d+) more panels \(of 200\)\. Give `panel`", out.text)
    assert found
    assert int(found.group(1)) + out.text.count('\n- "') == 200


def test_refusals_and_missing_dashboards_in_perses_words() -> None:
    fake = Fake().on(DASHBOARD, {"message": "missing 'read' permission"}, status=403)
    assert error(fake, "get_dashboard", {"project": "shop", "dashboard": "checkout"}) == (
        "the user has no permission to read dashboard checkout in project shop in Perses (HTTP 403)"
    )
    assert error(Fake(), "get_dashboard", {"project": "shop", "dashboard": "gone"}) == (
        "Perses has no dashboard gone in project shop (HTTP 404); check the name"
    )
    assert "String should match pattern" in error(
        Fake(), "get_dashboard", {"project": "../admin", "dashboard": "x"}
    )


def test_without_perses_the_tools_say_so() -> None:
    for name, arguments in [
        ("list_datasources", {}),
        ("list_dashboards", {}),
        ("get_dashboard", {"project": "shop", "dashboard": "checkout"}),
    ]:
        assert error(Fake(), name, arguments, perses=False) == NOT_CONFIGURED


def _datasource(name: str, project: str | None = None, default: bool = False) -> dict[str, Any]:
    meta = {"name": name, **({"project": project} if project else {})}
    spec = {"default": default, "plugin": {"kind": "PrometheusDatasource", "spec": {}}}
    return {"kind": "Datasource" if project else "GlobalDatasource", "metadata": meta, "spec": spec}


def _projects(*names: str) -> list[dict[str, Any]]:
    return [{"kind": "Project", "metadata": {"name": n}} for n in names]


def test_datasources_global_and_per_project_with_what_could_not_be_read() -> None:
    fake = (
        Fake()
        .on("/api/v1/globaldatasources", {"message": "forbidden"}, status=403)
        .on("/api/v1/projects", _projects("shop", "secret"))
        .on("/api/v1/projects/shop/datasources", [_datasource("prom", "shop", default=True)])
        .on("/api/v1/projects/secret/datasources", {"message": "forbidden"}, status=403)
    )
    out = call(fake, "list_datasources", {})
    assert out.text.splitlines() == [
        f"This investigation queries {DATASOURCE}.",
        "1 datasources:",
        f"{DATASOURCE}: PrometheusDatasource, the default PrometheusDatasource of shop, "
        "the datasource of this investigation",
        "Not read: the user has no permission to read the global datasources in Perses (HTTP 403).",
        "Not read: the user has no permission to read the datasources of project secret in "
        "Perses (HTTP 403).",
    ]
    one = call(fake, "list_datasources", {"project": "shop"})
    assert one.data == {"project": "shop", "count": 1}


def test_dashboards_of_one_project_ask_perses_for_metadata_only() -> None:
    listing = [
        {"kind": "Dashboard", "metadata": {"name": "checkout", "project": "shop"}},
        {"kind": "Dashboard", "metadata": {"name": "api", "project": "shop"}},
    ]
    fake = Fake().on("/api/v1/projects/shop/dashboards", listing)
    out = call(fake, "list_dashboards", {"project": "shop"})
    assert out.text.splitlines() == ["2 dashboards:", "shop/api", "shop/checkout"]
    assert fake.params("/api/v1/projects/shop/dashboards") == [[("metadata_only", "true")]]


def test_dashboards_across_many_projects_are_bounded() -> None:
    names = [f"team{i:03}" for i in range(MAX_PROJECTS + 5)]
    fake = Fake().on("/api/v1/projects", _projects(*names))
    for name in names:
        board = [{"kind": "Dashboard", "metadata": {"name": "main", "project": name}}]
        fake.on(f"/api/v1/projects/{name}/dashboards", board)
    out = call(fake, "list_dashboards", {})
    assert f"{MAX_PROJECTS} dashboards:" in out.text
    assert "Not read: 5 more projects (team050, team051, team052, team053, team054, …)" in out.text
    assert len(fake.requests) == MAX_PROJECTS + 1
