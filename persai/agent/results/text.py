"""How times, durations, values and label sets are written in tool output."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime


def format_time(timestamp: float) -> str:
    """RFC 3339 in UTC: `2026-11-24T14:05:00Z` (milliseconds only when there are some)."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_duration(seconds: float) -> str:
    """A duration the way PromQL writes it: `30s`, `5m`, `1h30m`, `2d`, `0.5s`."""
    if seconds < 1 or seconds != int(seconds):
        return f"{seconds:g}s"
    whole = int(seconds)
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts)


def format_value(value: float) -> str:
    """A value in at most four significant digits; integers up to a million written whole."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.4g}"


def parse_value(text: str) -> float:
    """A sample value as Prometheus writes it (`"1.5"`, `"NaN"`, `"+Inf"`)."""
    return float(text)


def format_labels(labels: Mapping[str, str]) -> str:
    """A PromQL selector for the label set: `name{a="b", c="d"}`, or `{}` when there are none."""
    name = labels.get("__name__", "")
    pairs = ", ".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()) if k != "__name__")
    if name and not pairs:
        return name
    return f"{name}{{{pairs}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def common_labels(label_sets: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The labels every set has with the same value."""
    iterator = iter(label_sets)
    common = dict(next(iterator, {}))
    for labels in iterator:
        common = {k: v for k, v in common.items() if labels.get(k) == v}
        if not common:
            break
    return common


def without(labels: Mapping[str, str], common: Mapping[str, str]) -> dict[str, str]:
    """The labels of one set that are not common to all."""
    return {k: v for k, v in labels.items() if k not in common}


def varying_labels(label_sets: list[Mapping[str, str]]) -> dict[str, int]:
    """Label names not common to all sets, with how many distinct values each has."""
    common = common_labels(label_sets)
    values: dict[str, set[str]] = {}
    for labels in label_sets:
        for key, value in labels.items():
            if key not in common:
                values.setdefault(key, set()).add(value)
    return {k: len(v) for k, v in values.items()}


def short_query(query: str, limit: int = 300) -> str:
    """The query itself, or its start with a note of how much was left out when it is long."""
    if len(query) <= limit:
        return query
    return f"{query[:limit]}… ({len(query) - limit} more characters)"
