"""Discovery, alert and rule tools: bounded windows, filters, lists that fit, hints when empty."""

from __future__ import annotations

import re
from typing import Any

import httpx

from persai.jobs import TimeRange
from tests.support.tools import NOW, Fake, call, error

NAMES = "/api/v1/label/__name__/values"


def test_list_metrics_looks_at_the_last_hour_or_the_dashboard_range() -> None:
    fake = Fake().prometheus(NAMES, ["up", "node_load1"])
    out = call(fake, "list_metrics", {})
    assert out.text.splitlines() == [
        "With data between 2026-11-24T13:00:00Z and 2026-11-24T14:00:00Z.",
        "2 metric names:",
        "node_load1",
        "up",
    ]
    assert fake.params(NAMES) == [
        [("start", str(NOW.timestamp() - 3600)), ("end", str(NOW.timestamp())), ("limit", "20000")]
    ]
    call(fake, "list_metrics", {}, time_range=TimeRange(duration="6h"))
    assert fake.params(NAMES)[1][0] == ("start", str(NOW.timestamp() - 6 * 3600))


def test_a_search_within_a_selector_keeps_what_both_match() -> None:
    def values(request: httpx.Request) -> httpx.Response:
        selector = request.url.params["match[]"]
        names = ["http_requests_total", "up"] if "job" in selector else ["http_requests_total"]
        names += ["grpc_requests_total"] if "__name__" in selector else []
        return httpx.Response(200, json={"status": "success", "data": names})

    fake = Fake().handle("/proxy/projects/shop/datasources/prom" + NAMES, values)
    arguments = {"match": '{job="api"}', "search": 'requests|"q\\d'}
    out = call(fake, "list_metrics", arguments)
    assert out.text.splitlines()[1:] == ["1 metric names:", "http_requests_total"]
    selectors = sorted(dict(p)["match[]"] for p in fake.params(NAMES))
    assert selectors == ['{__name__=~"(?i).*(?:requests|\\"q\\\\d).*"}', '{job="api"}']
    assert out.data is not None
    assert (out.data["count"], out.data["search"]) == (1, 'requests|"q\\d')


def test_a_long_list_fits_the_budget_and_says_how_to_narrow_it() -> None:
    fake = Fake().prometheus(NAMES, [f"metric_{i:05}" for i in range(5000)])
    out = call(fake, "list_metrics", {}, budget=300)
    assert "5000 metric names:" in out.text
    found = re.search(r"Not shown: (\d+) more metric names \(of 5000\)\. Hint: narrow", out.text)
    assert found
    assert int(found.group(1)) + out.text.count("\nmetric_") == 5000


def test_nothing_found_comes_with_a_hint() -> None:
    out = call(Fake().prometheus(NAMES, []), "list_metrics", {"search": "latency"})
    assert "No metric names found. Try a broader search" in out.text


def test_label_names_of_a_selector() -> None:
    fake = Fake().prometheus("/api/v1/labels", ["job", "__name__", "instance"])
    out = call(fake, "list_label_names", {"match": "up"})
    assert out.text.splitlines()[1:] == ["3 label names:", "__name__", "instance", "job"]
    assert dict(fake.params("/api/v1/labels")[0])["match[]"] == "up"


def test_label_values_search_and_label_name_check() -> None:
    path = "/api/v1/label/service/values"
    fake = Fake().prometheus(path, ["checkout", "cart"])
    out = call(fake, "list_label_values", {"label": "service", "search": "check"})
    assert dict(fake.params(path)[0])["match[]"] == '{service=~"(?i).*(?:check).*"}'
    assert "2 values of label service:" in out.text
    assert "invalid arguments for list_label_values: label: String should match pattern" in (
        error(fake, "list_label_values", {"label": "bad-name"})
    )


def test_find_series_says_which_labels_vary_and_how_to_count_them() -> None:
    series = [
        {"__name__": "up", "job": "node", "instance": f"10.0.0.{i}:9100", "zone": f"z{i % 3}"}
        for i in range(300)
    ]
    fake = Fake().prometheus("/api/v1/series", series)
    out = call(fake, "find_series", {"match": 'up{job="node"}'}, budget=400)
    assert "Labels that vary: zone (3 values: z0, z1, z2); instance (300 values: " in out.text
    assert 'Labels common to all: up{job="node"}' in out.text
    assert 'e.g. `count by (zone) (up{job="node"})`, or add a matcher such as zone="z0"' in out.text


def test_metadata_lines_and_the_hint_for_unscraped_metrics() -> None:
    metadata = {
        "http_requests_total": [{"type": "counter", "help": "Requests.", "unit": ""}],
        "node_memory_bytes": [{"type": "gauge", "help": "", "unit": "bytes"}],
    }
    out = call(Fake().prometheus("/api/v1/metadata", metadata), "get_metric_metadata", {})
    assert out.text.splitlines() == [
        "2 metadata entries:",
        "http_requests_total (counter): Requests.",
        "node_memory_bytes (gauge, unit bytes): (no help text)",
    ]
    empty = call(Fake().prometheus("/api/v1/metadata", {}), "get_metric_metadata", {"metric": "x"})
    assert empty.text.startswith("No metadata entries for x found. Prometheus keeps metadata only")


def _alert(name: str, state: str, active_at: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": f"{name} is bad"},
        "state": state,
        "activeAt": active_at,
        "value": "1.5e+00",
    }


def test_alerts_firing_first_with_times_in_utc_seconds() -> None:
    alerts = [
        _alert("DiskFull", "pending", "2026-11-24T13:59:00.123456789Z", instance="a"),
        _alert("HighLatency", "firing", "2026-11-24T13:40:00.5Z", service="checkout"),
    ]
    fake = Fake().prometheus("/api/v1/alerts", {"alerts": alerts})
    out = call(fake, "list_alerts", {})
    assert out.text.splitlines() == [
        "2 alerts (firing or pending):",
        'HighLatency{service="checkout"} firing since 2026-11-24T13:40:00Z, value 1.5: '
        "HighLatency is bad",
        'DiskFull{instance="a"} pending since 2026-11-24T13:59:00Z, value 1.5: DiskFull is bad',
    ]
    assert out.data == {"state": None, "count": 2, "firing": 1, "time": "2026-11-24T14:00:00Z"}
    pending = call(fake, "list_alerts", {"state": "pending"})
    assert pending.text.startswith("1 pending alerts:")


def test_no_alerts_says_where_alerts_come_from() -> None:
    out = call(Fake().prometheus("/api/v1/alerts", {"alerts": []}), "list_alerts", {})
    assert "Nothing is alerting in this Prometheus now" in out.text


def test_rules_of_one_type_with_long_expressions_shortened_and_errors_shown() -> None:
    groups = [
        {
            "name": "api",
            "rules": [
                {
                    "type": "alerting",
                    "name": "Slow",
                    "query": "x > " + "1" * 400,
                    "duration": 300,
                    "state": "inactive",
                    "alerts": [],
                    "health": "ok",
                },
                {
                    "type": "recording",
                    "name": "job:x:rate5m",
                    "query": "rate(x[5m])",
                    "health": "err",
                    "lastError": "many-to-many matching not allowed",
                },
            ],
        }
    ]
    fake = Fake().prometheus("/api/v1/rules", {"groups": groups})
    everything = call(fake, "list_rules", {}).text.splitlines()
    assert everything[0] == "2 rules:"
    assert everything[1].startswith("alert Slow (group api): x > 111")
    assert everything[1].endswith("… (104 more characters) for 5m; inactive, 0 active; health ok")
    assert everything[2] == (
        "record job:x:rate5m (group api): rate(x[5m]); health err, error: many-to-many matching "
        "not allowed"
    )
    records = call(fake, "list_rules", {"type": "record"})
    assert fake.params("/api/v1/rules")[-1] == [("type", "record")]
    assert records.text.splitlines()[0] == "1 recording rules:"
    assert "type: Input should be 'alert' or 'record'" in error(fake, "list_rules", {"type": "x"})


def test_many_alerts_fit_the_budget_and_say_how_to_see_fewer() -> None:
    alerts = [
        _alert(
            "TargetDown", "firing", "2026-11-24T13:00:00Z", instance=f"10.0.{i // 250}.{i % 250}"
        )
        for i in range(500)
    ]
    out = call(
        Fake().prometheus("/api/v1/alerts", {"alerts": alerts}), "list_alerts", {}, budget=400
    )
    assert out.text.startswith("500 alerts (firing or pending):")
    assert re.search(
        r"Not shown: \d+ more alerts \(firing or pending\) \(of 500\)\. Hint: state=", out.text
    )


def _not_allowed(request: httpx.Request) -> httpx.Response:
    # What Perses's proxy answers outside a datasource's allowedEndpoints (proxy.go).
    message = f'you are not allowed to use this endpoint "{request.url.path}" with the HTTP method '
    return httpx.Response(403, json={"message": message + request.method})


def _alerts_series(request: httpx.Request) -> httpx.Response:
    query = dict(httpx.QueryParams(request.content.decode()))["query"]
    labels = {"alertname": "HighLatency", "service": "checkout"}
    if query == "ALERTS":
        metric = {"__name__": "ALERTS", "alertstate": "firing", **labels}
        value = "1"
    else:
        metric, value = {"__name__": "ALERTS_FOR_STATE", **labels}, str(NOW.timestamp() - 1200)
    return httpx.Response(
        200,
        json={
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [{"metric": metric, "value": [NOW.timestamp(), value]}],
            },
        },
    )


def test_alerts_come_from_the_alerts_series_where_the_endpoint_is_not_allowed() -> None:
    fake = (
        Fake()
        .handle("/proxy/projects/shop/datasources/prom/api/v1/alerts", _not_allowed)
        .handle("/proxy/projects/shop/datasources/prom/api/v1/query", _alerts_series)
    )
    out = call(fake, "list_alerts", {})
    assert out.text.splitlines()[1:] == [
        "1 alerts (firing or pending):",
        'HighLatency{service="checkout"} firing since 2026-11-24T13:40:00Z',
    ]
    assert "does not allow /api/v1/alerts" in out.text
    assert fake.methods("/api/v1/query") == ["POST", "POST"]


def test_rules_refused_by_the_datasource_say_so_and_what_still_works() -> None:
    fake = Fake().handle("/proxy/projects/shop/datasources/prom/api/v1/rules", _not_allowed)
    message = error(fake, "list_rules", {})
    assert "Perses configuration of datasource" in message
    assert "does not allow GET /api/v1/rules" in message
    assert "not a permission problem" in message
    assert "list_alerts" in message
    assert "no permission" not in message


def test_each_endpoint_is_called_with_the_method_a_ui_configured_datasource_allows() -> None:
    fake = Fake()
    for path in ("/api/v1/labels", "/api/v1/series", "/api/v1/metadata", NAMES):
        fake.prometheus(path, [] if path != "/api/v1/metadata" else {})
    call(fake, "list_label_names", {})
    call(fake, "find_series", {"match": "up"})
    call(fake, "get_metric_metadata", {})
    call(fake, "list_metrics", {})
    assert fake.methods("/api/v1/labels") == ["POST"]
    assert fake.methods("/api/v1/series") == ["POST"]
    assert fake.methods("/api/v1/metadata") == ["GET"]
    assert fake.methods(NAMES) == ["GET"]
    (series,) = fake.params("/api/v1/series")
    assert ("match[]", "up") in series
