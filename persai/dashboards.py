"""An investigation's range queries as a Perses dashboard resource.

The shape follows Perses's dashboard model at v0.54.0 (pkg/model/api/v1/dashboard.go and the
Grid layout of pkg/model/api/v1/dashboard/layout.go): `kind: Dashboard`, project metadata,
`spec.display`, one `TimeSeriesChart` panel per query with a `PrometheusTimeSeriesQuery`
(perses/plugins prometheus schemas: `query`, `datasource`, `minStep`), a `Grid` layout whose items
`$ref` the panels, and `duration`. A dashboard stores only a relative `duration`; the absolute
window the agent queried travels as a dashboard link (`?start=…&end=…`, the URL parameters of
the Perses time range, in milliseconds) and as `window` beside the resource.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from persai.datasources import DatasourcePath, parse_datasource
from persai.errors import Conflict, InvalidRequest
from persai.jobs import Job, StepStatus

RANGE_TOOLS = frozenset({"execute_range_query"})
"""The tools whose successful calls are range queries a dashboard can draw again."""

MAX_PANELS = 20
GRID_COLUMNS = 24  # the width of a Perses grid
PANEL_WIDTH = 12
PANEL_HEIGHT = 8
MAX_NAME_CHARS = 75  # Perses resource names (perses/spec go/common ValidateID)
MAX_DISPLAY_CHARS = 200


@dataclass(frozen=True)
class QueryDescriptor:
    """One query to draw: where it ran, what it asked, over which window and step."""

    datasource: str
    query: str
    start: datetime
    end: datetime
    step_seconds: float | None = None


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def descriptors_from_steps(job: Job) -> list[QueryDescriptor]:
    """The job's successful range-query tool calls, in call order, as query descriptors."""
    found: list[QueryDescriptor] = []
    for step in job.steps:
        data = step.data or {}
        if step.tool not in RANGE_TOOLS or step.status is not StepStatus.OK:
            continue
        try:
            start = datetime.fromisoformat(str(data["start"]))
            end = datetime.fromisoformat(str(data["end"]))
            query = str(data["query"])
        except (KeyError, ValueError):
            continue
        step_s = data.get("step_s")
        found.append(
            QueryDescriptor(
                datasource=job.datasource,
                query=query,
                start=start,
                end=end,
                step_seconds=float(step_s) if isinstance(step_s, int | float) else None,
            )
        )
    return found


class EvidenceLike(Protocol):
    """What the dashboard reads of an investigation's evidence entry (`persai.jobs.Evidence`)."""

    @property
    def datasource(self) -> str: ...
    @property
    def query(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def step_seconds(self) -> float | None: ...


def descriptors_from_evidence(evidence: Iterable[EvidenceLike]) -> list[QueryDescriptor]:
    """The range queries of an investigation's evidence, in its order."""
    return [
        QueryDescriptor(
            datasource=entry.datasource,
            query=entry.query,
            start=entry.start,
            end=entry.end,
            step_seconds=entry.step_seconds,
        )
        for entry in evidence
        if entry.kind == "range"
    ]


def job_descriptors(job: Job) -> list[QueryDescriptor]:
    """What the dashboard of a job draws: the range queries of its evidence once it has ended;
    before that (or where its evidence holds no range query), its successful range-query calls."""
    return descriptors_from_evidence(job.evidence) or descriptors_from_steps(job)


def dashboard_name(job_id: str) -> str:
    return f"persai-{job_id[:12]}"


def build_dashboard(
    *,
    name: str,
    title: str,
    description: str,
    queries: Sequence[QueryDescriptor],
    project: str | None = None,
) -> dict[str, Any]:
    """A Perses dashboard (the resource a `POST /api/v1/projects/{project}/dashboards` takes)
    drawing each query over the window it ran on. Conflict (409) when there is nothing to
    draw; InvalidRequest (400) when the queries name no project and none is given."""
    if not queries:
        raise Conflict("the investigation ran no range query (yet) to draw")
    chosen = list(queries)[:MAX_PANELS]
    target = project or _project_of(chosen)
    window = Window(min(q.start for q in chosen), max(q.end for q in chosen))
    panels: dict[str, Any] = {}
    items: list[dict[str, Any]] = []
    for index, query in enumerate(chosen):
        key = f"query_{index}"
        panels[key] = _panel(query)
        items.append(_grid_item(index, key))
    return {
        "kind": "Dashboard",
        "metadata": {"name": _name(name), "project": target},
        "spec": {
            "display": {
                "name": _bounded(title, MAX_DISPLAY_CHARS),
                "description": description,
            },
            "duration": _duration(window),
            "panels": panels,
            "layouts": [{"kind": "Grid", "spec": {"items": items}}],
            "links": [
                {
                    "name": "The investigation's window",
                    "url": f"?start={_millis(window.start)}&end={_millis(window.end)}",
                }
            ],
        },
    }


def dashboard_for(job: Job, project: str | None = None) -> dict[str, Any]:
    """The dashboard of an investigation's range queries, named after it, its question as the
    description; `window` (the span of the queries, RFC 3339) beside the resource."""
    queries = job_descriptors(job)
    resource = build_dashboard(
        name=dashboard_name(job.id),
        title=f"PersAI: {job.question}",
        description=job.question,
        queries=queries,
        project=project,
    )
    chosen = queries[:MAX_PANELS]
    return {
        "dashboard": resource,
        "window": {
            "start": min(q.start for q in chosen).isoformat().replace("+00:00", "Z"),
            "end": max(q.end for q in chosen).isoformat().replace("+00:00", "Z"),
        },
    }


def _panel(query: QueryDescriptor) -> dict[str, Any]:
    prometheus: dict[str, Any] = {
        "query": query.query,
        "datasource": {"kind": "PrometheusDatasource", "name": _datasource_name(query)},
    }
    if query.step_seconds:
        prometheus["minStep"] = f"{max(1, math.ceil(query.step_seconds))}s"
    return {
        "kind": "Panel",
        "spec": {
            "display": {"name": _bounded(query.query, MAX_DISPLAY_CHARS)},
            "plugin": {"kind": "TimeSeriesChart", "spec": {"legend": {"position": "bottom"}}},
            "queries": [
                {
                    "kind": "TimeSeriesQuery",
                    "spec": {"plugin": {"kind": "PrometheusTimeSeriesQuery", "spec": prometheus}},
                }
            ],
        },
    }


def _grid_item(index: int, key: str) -> dict[str, Any]:
    per_row = GRID_COLUMNS // PANEL_WIDTH
    return {
        "x": (index % per_row) * PANEL_WIDTH,
        "y": (index // per_row) * PANEL_HEIGHT,
        "width": PANEL_WIDTH,
        "height": PANEL_HEIGHT,
        "content": {"$ref": f"#/spec/panels/{key}"},
    }


def _datasource(query: QueryDescriptor) -> DatasourcePath:
    """What a descriptor's datasource names: a proxy path, or a bare name (evidence may hold
    the datasource as the tool received it)."""
    try:
        return parse_datasource(query.datasource)
    except InvalidRequest:
        return DatasourcePath(path=query.datasource, name=query.datasource)


def _datasource_name(query: QueryDescriptor) -> str:
    return _datasource(query).name


def _project_of(queries: Iterable[QueryDescriptor]) -> str:
    projects = {_datasource(q).project for q in queries} - {None}
    if len(projects) == 1:
        return projects.pop()  # type: ignore[return-value]  # None was taken out
    raise InvalidRequest(
        "say in which project to save the dashboard (?project=): its queries name "
        + ("no project" if not projects else "several projects")
    )


def _duration(window: Window) -> str:
    """The window's length as a Perses duration, in whole minutes (at least one)."""
    minutes = max(1, math.ceil((window.end - window.start).total_seconds() / 60))
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest}m"
    return f"{hours}h{rest}m" if rest else f"{hours}h"


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _name(name: str) -> str:
    if len(name) <= MAX_NAME_CHARS:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME_CHARS - 9]}-{digest}"


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
