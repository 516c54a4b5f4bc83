"""Scenarios for judging result analysis: the data, when the question is asked, what to ask.

A `Case` is an `Incident` (its data and ground truth) with the moment a model asks (`now`:
the data may end before it) and the `Probe`s a model would plausibly send: a tool, its
arguments, and which series of that tool's result are truly anomalous and when (`Culprit`).
A probe without culprits is one whose result has nothing wrong in it: nothing should stand out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from persai.incidents.model import Family, GroundTruth, Incident, IncidentParams, utc

Tool = Literal["execute_range_query", "execute_instant_query"]


@dataclass(frozen=True)
class Culprit:
    """One truly anomalous series of a probe's result, and when its result shows it (UTC).

    `labels` tell it apart among the result's series (`{"service": "checkout"}`); `start` is
    the first evaluation time that shows it, `end` the last (for `rate(…[5m])` five minutes
    after the raw data's anomaly ends).
    """

    labels: Mapping[str, str]
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Probe:
    """One tool call a model would plausibly make, and the culprits its result holds."""

    tool: Tool
    arguments: Mapping[str, str]
    culprits: tuple[Culprit, ...] = ()

    @property
    def healthy(self) -> bool:
        """Whether nothing in the result is wrong (nothing should stand out)."""
        return not self.culprits


@dataclass(frozen=True)
class Case:
    """A generated analysis scenario: its data, the moment of asking and the probes."""

    incident: Incident
    now: datetime
    probes: tuple[Probe, ...]

    @property
    def name(self) -> str:
        return self.incident.scenario


@dataclass(frozen=True)
class AnalysisScenario:
    """A named generator of one case: `build(params, now)`, `params.end` being the data's end."""

    name: str
    description: str
    build: Callable[[IncidentParams, datetime], Case]
    duration: timedelta = timedelta(hours=2)
    step: timedelta = timedelta(seconds=30)
    lag_s: tuple[int, int] = (20, 150)
    """How long before `now` the data ends, in seconds (drawn from the seed)."""


def range_probe(query: str, duration: str, *culprits: Culprit, step: str = "") -> Probe:
    """A range query over the last `duration` (`2h`) before now, as a model asks for one."""
    arguments = {"query": query, "duration": duration}
    if step:
        arguments["step"] = step
    return Probe("execute_range_query", arguments, culprits)


def instant_probe(query: str, *culprits: Culprit) -> Probe:
    """An instant query at now (the tool's default time)."""
    return Probe("execute_instant_query", {"query": query}, culprits)


def seen(labels: Mapping[str, str], begin: float, end: float, lag_s: float = 0) -> Culprit:
    """A culprit whose raw data is anomalous from `begin` to `end` (Unix seconds), seen through
    a query whose range functions look back `lag_s` seconds (300 for `rate(…[5m])`)."""
    return Culprit(dict(labels), utc(begin), utc(end + lag_s))


def make_case(
    params: IncidentParams,
    now: datetime,
    families: tuple[Family, ...],
    probes: tuple[Probe, ...],
    question: str,
) -> Case:
    """The case, its incident's ground truth taken from the first probe with a culprit."""
    first = next((p for p in probes if p.culprits), None)
    culprit = first.culprits[0] if first else None
    truth = GroundTruth(
        question=question,
        query=(first or probes[0]).arguments["query"],
        metrics=tuple(sorted({f.name for f in families})),
        culprit=dict(culprit.labels) if culprit else None,
        window_start=culprit.start if culprit else None,
        window_end=culprit.end if culprit else None,
    )
    name = params.labels.get("scenario", "analysis")
    return Case(Incident(name, params, families, truth), now, probes)


def stamped(params: IncidentParams, name: str, scenario: AnalysisScenario) -> IncidentParams:
    """The scenario's range and step, and its name as the `scenario` label of every series."""
    return replace(
        params,
        duration=scenario.duration,
        step=scenario.step,
        labels={**params.labels, "scenario": name},
    )
