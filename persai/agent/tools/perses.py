"""Perses tools: the datasources and dashboards the user may read, and what a dashboard shows.

They call Perses's own API as the user (`ToolContext.perses`), so they see exactly what the user
may see; without Perses (`PERSES_API_URL` unset) they answer an error saying so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from persai.agent import results
from persai.agent.tools import perses_dashboard
from persai.agent.tools.base import Tool, ToolContext, ToolError, ToolOutput, tool
from persai.agent.tools.upstream import UpstreamAPI, UpstreamStatusError

MAX_PROJECTS = 50
"""Listing across projects looks at this many at most (the rest is counted, not read)."""
_CONCURRENCY = 8
"""Perses requests at once when listing across projects."""
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
NOT_CONFIGURED = (
    "Perses is not configured for PersAI (PERSES_API_URL is unset), so its datasources and "
    "dashboards cannot be read; use the Prometheus tools on the investigation's datasource"
)


def _perses(context: ToolContext) -> UpstreamAPI:
    if context.perses is None:
        raise ToolError(NOT_CONFIGURED)
    return context.perses


async def _get(
    context: ToolContext, path: str, what: str, params: dict[str, Any] | None = None
) -> Any:
    """GET from Perses; a refusal or a missing resource is told in terms of `what` was asked."""
    try:
        return await _perses(context).get(path, params)
    except UpstreamStatusError as exc:
        if exc.status == 403:
            raise ToolError(
                f"the user has no permission to read {what} in Perses (HTTP 403)"
            ) from exc
        if exc.status == 404:
            raise ToolError(f"Perses has no {what} (HTTP 404); check the name") from exc
        raise


def _items(body: Any) -> list[Mapping[str, Any]]:
    return [item for item in body if isinstance(item, Mapping)] if isinstance(body, list) else []


def _name(item: Mapping[str, Any]) -> str:
    return str((item.get("metadata") or {}).get("name", "?"))


async def _projects(context: ToolContext) -> list[str]:
    body = await _get(context, "/api/v1/projects", "the list of projects")
    return sorted(_name(item) for item in _items(body))


async def _across_projects(
    context: ToolContext, read: Callable[[str], Awaitable[list[str]]]
) -> tuple[list[str], list[str]]:
    """`read` each project the user may see (at most MAX_PROJECTS): lines, and notes on what
    could not be read or was left out."""
    projects = await _projects(context)
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def one(project: str) -> list[str] | ToolError:
        async with gate:
            try:
                return await read(project)
            except ToolError as exc:
                return exc

    answers = await asyncio.gather(*(one(p) for p in projects[:MAX_PROJECTS]))
    lines = [line for answer in answers if isinstance(answer, list) for line in answer]
    notes = [f"Not read: {answer}." for answer in answers if isinstance(answer, ToolError)]
    if len(projects) > MAX_PROJECTS:
        left = ", ".join(projects[MAX_PROJECTS : MAX_PROJECTS + 10])
        notes.append(
            f"Not read: {len(projects) - MAX_PROJECTS} more projects ({left}, …); "
            "give `project` to see one."
        )
    return lines, notes


def _with_notes(
    head: str, lines: list[str], notes: list[str], kind: str, budget: int, *, empty: str, cut: str
) -> str:
    """`head`, the list (`empty` says why there is nothing, `cut` how to see what is left
    out), then `notes` on what could not be read, all within `budget` tokens."""
    tail = results.fit_text("\n".join(notes), budget // 4) if notes else ""
    rest = budget - results.estimate_tokens(head) - results.estimate_tokens(tail)
    hint = cut if lines else empty
    listing = results.render_list(lines, kind=kind, budget_tokens=rest, hint=hint)
    return "\n".join(part for part in (head, listing, tail) if part)


class ListDatasourcesParams(BaseModel):
    project: str | None = Field(
        default=None,
        pattern=_NAME,
        description="Only this project's datasources. Default: global ones and every project's.",
    )


def _datasource_line(context: ToolContext, item: Mapping[str, Any], project: str | None) -> str:
    name = _name(item)
    path = (
        f"/proxy/projects/{project}/datasources/{name}"
        if project
        else f"/proxy/globaldatasources/{name}"
    )
    spec = item.get("spec") or {}
    kind = (spec.get("plugin") or {}).get("kind", "unknown plugin")
    marks = [str(kind)]
    if spec.get("default"):
        marks.append(f"the default {kind}{' of ' + project if project else ''}")
    if path == context.prometheus.label:
        marks.append("the datasource of this investigation")
    return f"{path}: {', '.join(marks)}"


async def _project_datasources(context: ToolContext, project: str) -> list[str]:
    path = f"/api/v1/projects/{project}/datasources"
    body = await _get(context, path, f"the datasources of project {project}")
    return [_datasource_line(context, item, project) for item in _items(body)]


async def _global_datasources(context: ToolContext) -> list[str]:
    body = await _get(context, "/api/v1/globaldatasources", "the global datasources")
    return [_datasource_line(context, item, None) for item in _items(body)]


@tool(ListDatasourcesParams)
async def list_datasources(context: ToolContext, params: ListDatasourcesParams) -> ToolOutput:
    """List the Perses datasources the user may query (global ones and those of each project),
    with their proxy path and plugin kind (PrometheusDatasource, ...), marking the one this
    investigation queries. Every query tool runs on that datasource only."""
    _perses(context)
    notes: list[str] = []
    if params.project:
        lines = await _project_datasources(context, params.project)
    else:
        try:
            lines = await _global_datasources(context)
        except ToolError as exc:
            lines, notes = [], [f"Not read: {exc}."]
        more, more_notes = await _across_projects(
            context, lambda p: _project_datasources(context, p)
        )
        lines, notes = [*lines, *more], [*notes, *more_notes]
    head = f"This investigation queries {context.prometheus.label}."
    text = _with_notes(
        head,
        lines,
        notes,
        "datasources",
        context.budget_tokens,
        empty="The user may read no datasource here.",
        cut="Give `project` to list one project's datasources.",
    )
    return ToolOutput(text, {"project": params.project, "count": len(lines)})


class ListDashboardsParams(BaseModel):
    project: str | None = Field(
        default=None,
        pattern=_NAME,
        description="The project whose dashboards to list. Default: every project's.",
    )


async def _project_dashboards(context: ToolContext, project: str) -> list[str]:
    # metadata only: Perses then sends each dashboard with an empty spec (perses
    # internal/api/toolbox/list.go), so there is no title or panel to read here
    path = f"/api/v1/projects/{project}/dashboards"
    what = f"the dashboards of project {project}"
    body = await _get(context, path, what, {"metadata_only": "true"})
    return sorted(f"{project}/{_name(item)}" for item in _items(body))


@tool(ListDashboardsParams)
async def list_dashboards(context: ToolContext, params: ListDashboardsParams) -> ToolOutput:
    """List the Perses dashboards the user may read, as project/name, in one project or in every
    project. Use get_dashboard to see a dashboard's title, panels and their PromQL queries."""
    _perses(context)
    if params.project:
        lines, notes = await _project_dashboards(context, params.project), list[str]()
    else:
        lines, notes = await _across_projects(context, lambda p: _project_dashboards(context, p))
    text = _with_notes(
        "",
        lines,
        notes,
        "dashboards",
        context.budget_tokens,
        empty="The user may read no dashboard here.",
        cut="Give `project` to list one project's dashboards.",
    )
    return ToolOutput(text, {"project": params.project, "count": len(lines)})


class GetDashboardParams(BaseModel):
    project: str = Field(pattern=_NAME, description="The dashboard's project.")
    dashboard: str = Field(pattern=_NAME, description="The dashboard's name (not its title).")
    panel: str | None = Field(
        default=None,
        min_length=1,
        description="Only panels whose title contains this text (case-insensitive).",
    )


def _panel_text(panel: perses_dashboard.Panel) -> str:
    where = f' in row "{panel.row}"' if panel.row else ""
    about = f": {results.fit_text(panel.description, 40)}" if panel.description else ""
    lines = [f'- "{panel.title}" ({panel.kind}){where}{about}']
    if not panel.queries:
        lines.append("    no queries")
    for query in panel.queries:
        lines.append(f"    {query.kind} on {query.datasource}: {query.query or '(empty)'}")
    return "\n".join(lines)


def _dashboard_head(
    context: ToolContext, params: GetDashboardParams, spec: Mapping[str, Any]
) -> str:
    title = (spec.get("display") or {}).get("name")
    named = f' "{title}"' if title and title != params.dashboard else ""
    duration = f", default time range the last {spec['duration']}" if spec.get("duration") else ""
    head = [f"Dashboard {params.project}/{params.dashboard}{named}{duration}."]
    local = sorted(spec.get("datasources") or {})
    if local:
        head.append(f"Datasources defined in the dashboard: {', '.join(local)}.")
    variables = [perses_dashboard.variable(v) for v in spec.get("variables") or []]
    if variables:
        head.append(
            "Variables (substitute them before running a query; $__rate_interval and "
            "$__interval are Perses built-ins, e.g. 5m): " + "; ".join(variables)
        )
    head.append(f"This investigation queries {context.prometheus.label}.")
    return results.fit_text("\n".join(head), context.budget_tokens // 3)


@tool(GetDashboardParams)
async def get_dashboard(context: ToolContext, params: GetDashboardParams) -> ToolOutput:
    """Show a Perses dashboard: its panels in layout order with their title, chart kind and the
    PromQL of each query with the datasource it uses, plus the dashboard's variables and default
    time range. Use it to explain a dashboard or to rerun a panel's queries."""
    path = f"/api/v1/projects/{params.project}/dashboards/{params.dashboard}"
    what = f"dashboard {params.dashboard} in project {params.project}"
    body = await _get(context, path, what)
    spec = (body.get("spec") if isinstance(body, Mapping) else None) or {}
    found = perses_dashboard.panels(spec)
    if params.panel:
        found = [p for p in found if params.panel.lower() in p.title.lower()]
    head = _dashboard_head(context, params, spec)
    kind = f'panels with "{params.panel}" in their title' if params.panel else "panels"
    text = _with_notes(
        head,
        [_panel_text(p) for p in found],
        [],
        kind,
        context.budget_tokens,
        empty="Call again without `panel` to see every panel."
        if params.panel
        else "The dashboard has no panels.",
        cut="Give `panel` (part of a title) to see the panels not shown.",
    )
    data = {
        "project": params.project,
        "dashboard": params.dashboard,
        "duration": spec.get("duration"),
        "variables": [perses_dashboard.variable(v) for v in spec.get("variables") or []],
        "panels": [p.as_dict() for p in found],
    }
    return ToolOutput(text, data)


PERSES_TOOLS: tuple[Tool, ...] = (list_datasources, list_dashboards, get_dashboard)
