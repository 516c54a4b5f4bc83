"""What a Perses dashboard shows: its panels in layout order, their queries, its variables.

Perses dashboards (`kind: Dashboard`) keep panels in `spec.panels` by key, place them with
`spec.layouts` (grids, each maybe a titled row, whose items `$ref` a panel), and give each panel
a plugin (`TimeSeriesChart`, `StatChart`, `Markdown`, ...) and queries whose plugin holds the
query text and a datasource reference: absent (the default datasource of that kind), a
`{kind, name}` selector, or a `$variable`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_REF_PREFIX = "#/spec/panels/"
_QUERY_CHARS = 600
"""Longer queries are shortened, saying how much was left out."""


@dataclass(frozen=True)
class PanelQuery:
    kind: str
    """The query plugin, e.g. PrometheusTimeSeriesQuery."""
    query: str
    datasource: str
    """How the query names its datasource, in words."""


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    kind: str
    """The panel plugin, e.g. TimeSeriesChart."""
    row: str | None = None
    description: str | None = None
    queries: list[PanelQuery] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "kind": self.kind,
            "row": self.row,
            "queries": [
                {"kind": q.kind, "query": q.query, "datasource": q.datasource} for q in self.queries
            ],
        }


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def describe_datasource(reference: Any, local: Mapping[str, Any]) -> str:
    """A query's datasource reference in words; `local` are the dashboard's own datasources."""
    if isinstance(reference, str) and reference:
        return f"datasource variable {reference}"
    selector = _dict(reference)
    name, kind = selector.get("name"), selector.get("kind")
    if name:
        return f"{name} (defined in this dashboard)" if name in local else str(name)
    return f"the default {kind}" if kind else "the default datasource"


def _query(raw: Any, local: Mapping[str, Any]) -> PanelQuery:
    plugin = _dict(_dict(_dict(raw).get("spec")).get("plugin"))
    spec = _dict(plugin.get("spec"))
    text = str(spec.get("query") or spec.get("expr") or "")
    if len(text) > _QUERY_CHARS:
        text = f"{text[:_QUERY_CHARS]}… ({len(text) - _QUERY_CHARS} more characters)"
    return PanelQuery(
        kind=str(plugin.get("kind") or "unknown"),
        query=text,
        datasource=describe_datasource(spec.get("datasource"), local),
    )


def _panel(key: str, raw: Any, row: str | None, local: Mapping[str, Any]) -> Panel:
    spec = _dict(_dict(raw).get("spec"))
    display = _dict(spec.get("display"))
    queries = spec.get("queries") or []
    return Panel(
        key=key,
        title=str(display.get("name") or key),
        kind=str(_dict(spec.get("plugin")).get("kind") or "unknown"),
        row=row,
        description=str(display["description"]) if display.get("description") else None,
        queries=[_query(q, local) for q in queries if isinstance(q, Mapping)],
    )


def _placed(spec: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """Panel keys in the order the layouts show them (row by row, top to bottom, left to right)."""
    order: list[tuple[str, str | None]] = []
    for layout in spec.get("layouts") or []:
        grid = _dict(_dict(layout).get("spec"))
        row = _dict(grid.get("display")).get("title")
        items = [_dict(item) for item in grid.get("items") or []]
        items.sort(key=lambda item: (item.get("y", 0), item.get("x", 0)))
        for item in items:
            ref = str(_dict(item.get("content")).get("$ref", ""))
            if ref.startswith(_REF_PREFIX):
                order.append((ref.removeprefix(_REF_PREFIX), str(row) if row else None))
    return order


def panels(spec: Mapping[str, Any]) -> list[Panel]:
    """Every panel of a dashboard spec, in layout order; panels no layout shows come last."""
    raw_panels = _dict(spec.get("panels"))
    local = _dict(spec.get("datasources"))
    seen: set[str] = set()
    found = []
    placed = _placed(spec)
    unplaced: list[tuple[str, str | None]] = [(key, None) for key in raw_panels]
    for key, row in [*placed, *unplaced]:
        if key in raw_panels and key not in seen:
            seen.add(key)
            found.append(_panel(key, raw_panels[key], row, local))
    return found


_VARIABLE_PLUGINS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "PrometheusLabelValuesVariable": lambda s: (
        f"values of label {s.get('labelName')}"
        + (f" in {', '.join(s['matchers'])}" if s.get("matchers") else "")
    ),
    "PrometheusLabelNamesVariable": lambda s: (
        "label names" + (f" in {', '.join(s['matchers'])}" if s.get("matchers") else "")
    ),
    "PrometheusPromQLVariable": lambda s: (
        f"values of label {s.get('labelName')} in the result of {s.get('expr')}"
    ),
    "StaticListVariable": lambda s: "one of " + ", ".join(map(str, (s.get("values") or [])[:10])),
}


def variable(raw: Any) -> str:
    """One dashboard variable in words: `$job: values of label job in up`."""
    spec = _dict(_dict(raw).get("spec"))
    name = f"${spec.get('name', '?')}"
    if _dict(raw).get("kind") == "TextVariable":
        return f'{name} = "{spec.get("value", "")}" (text)'
    plugin = _dict(spec.get("plugin"))
    kind = str(plugin.get("kind") or "unknown")
    describe = _VARIABLE_PLUGINS.get(kind)
    text = describe(_dict(plugin.get("spec"))) if describe else f"a {kind} list"
    default = spec.get("defaultValue")
    if default not in (None, "", []):
        text += f", default {default}"
    return f"{name}: {text}"
