"""The scenarios by name, with their options and defaults, for tests and evaluation harnesses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType

from persai.incidents.infra import (
    high_cardinality,
    memory_leak,
    noisy_neighbour,
    saturation,
    target_down,
)
from persai.incidents.model import Incident, IncidentParams, Scenario
from persai.incidents.services import error_burst, latency_spike, red_herring

_ALL = (
    Scenario(
        "latency_spike",
        "Request-latency histogram for many services; one service's p99 spikes.",
        {"services": 50, "minutes": 10, "factor": 8.0},
        latency_spike,
    ),
    Scenario(
        "error_burst",
        "Request counters by endpoint and code; one endpoint's 5xx rate bursts.",
        {"minutes": 8},
        error_burst,
    ),
    Scenario(
        "memory_leak",
        "Pod memory rises linearly in one pod until it is OOM-killed and restarts.",
        {"pods": 30, "minutes": 60, "growth": 3.0},
        memory_leak,
    ),
    Scenario(
        "target_down",
        "`up` goes to 0 for one node exporter, with a gap in its other series.",
        {"instances": 40, "minutes": 15},
        target_down,
    ),
    Scenario(
        "high_cardinality",
        "One gauge with 1,000+ series; one series backs up for a few minutes.",
        {"series": 1000, "minutes": 10, "factor": 12.0},
        high_cardinality,
    ),
    Scenario(
        "saturation",
        "Node CPU time by mode; one node runs near 100 % for a while.",
        {"nodes": 12, "minutes": 20},
        saturation,
    ),
    Scenario(
        "noisy_neighbour",
        "A batch pod grabs its node's CPU; its neighbours are throttled.",
        {"pods": 30, "minutes": 25, "cores": 3.5},
        noisy_neighbour,
    ),
    Scenario(
        "red_herring",
        "Nothing is wrong: request rates follow their daily cycle with ordinary noise.",
        {},
        red_herring,
    ),
)

SCENARIOS: Mapping[str, Scenario] = MappingProxyType({s.name: s for s in _ALL})
"""Every scenario by name, in a stable order."""


def scenario_names() -> list[str]:
    """The names of all scenarios, in a stable order."""
    return list(SCENARIOS)


def generate(name: str, params: IncidentParams | None = None, **options: float) -> Incident:
    """Generate the scenario called `name` (see `SCENARIOS`); raises KeyError for an unknown one."""
    return SCENARIOS[name].generate(params, **options)


def generate_all(
    params: IncidentParams | None = None, names: Iterable[str] | None = None
) -> list[Incident]:
    """Generate several scenarios over the same range, each stamped with a `scenario` label.

    The label keeps them apart when they share one Prometheus; each ground truth's query
    matches on it.
    """
    base = params or IncidentParams()
    incidents = []
    for name in names if names is not None else SCENARIOS:
        stamped = replace(base, labels={**base.labels, "scenario": name})
        incidents.append(generate(name, stamped))
    return incidents
