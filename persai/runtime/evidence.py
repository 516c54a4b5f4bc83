"""An ended investigation's evidence: the query calls that supported its answer.

Each successful query call left its window and what the result analysis found in it
(`findings`) in its step's `data` (`persai.agent.tools.prometheus`). The evidence is the calls
whose results had something stand out, in call order; when none had, every successful query
call (the answer rests on them all the same). Bounded: a notification carries it whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import ValidationError

from persai.jobs import Evidence, Step, StepStatus

MAX_EVIDENCE = 10
MAX_FINDINGS = 5
MAX_TEXT_CHARS = 2000
"""A query (or a finding, or a datasource) longer than this is shortened with an ellipsis."""
_KINDS: dict[str, Literal["range", "instant"]] = {
    "execute_range_query": "range",
    "execute_instant_query": "instant",
}


def evidence_of(steps: Sequence[Step], datasource: str) -> list[Evidence]:
    """The evidence of an investigation's `steps`, queried on `datasource`."""
    calls = [e for e in (_evidence(step, datasource) for step in steps) if e is not None]
    flagged = [e for e in calls if e.findings]
    return (flagged or calls)[:MAX_EVIDENCE]


def _evidence(step: Step, datasource: str) -> Evidence | None:
    kind = _KINDS.get(step.tool)
    data = step.data or {}
    if kind is None or step.status is not StepStatus.OK or not isinstance(data.get("query"), str):
        return None
    window: dict[str, Any]
    if kind == "range":
        window = {"start": data.get("start"), "end": data.get("end")}
        window["step_seconds"] = data.get("step_s")
    else:
        window = {"start": data.get("time"), "end": data.get("time"), "step_seconds": None}
    findings = [_clip(str(f)) for f in (data.get("findings") or [])[:MAX_FINDINGS]]
    try:
        return Evidence(
            tool=step.tool,
            datasource=_clip(datasource),
            query=_clip(data["query"]),
            kind=kind,
            findings=findings,
            **window,
        )
    except ValidationError:
        return None  # a step stored by an older version, without its window


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1] + "…"
