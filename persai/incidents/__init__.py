"""Deterministic incident scenarios generated as OpenMetrics text, each with its ground truth.

incident = generate("latency_spike", IncidentParams(seed=1))
text = incident.openmetrics()        # for `promtool tsdb create-blocks-from openmetrics`
incident.truth.culprit               # {"service": "..."}
incident.truth.window_start          # when it began (UTC)
"""

from persai.incidents.catalog import SCENARIOS, generate, generate_all, scenario_names
from persai.incidents.model import (
    Family,
    GroundTruth,
    Incident,
    IncidentParams,
    Scenario,
    default_end,
    to_openmetrics,
)

__all__ = [
    "SCENARIOS",
    "Family",
    "GroundTruth",
    "Incident",
    "IncidentParams",
    "Scenario",
    "default_end",
    "generate",
    "generate_all",
    "scenario_names",
    "to_openmetrics",
]
