"""The analysis scenarios by name: what operators meet, each with its culprits and probes.

    case = generate_case("rate_burst", seed=1)
    text = to_openmetrics([case.incident])   # for promtool, as any incident
    case.probes[0].arguments                 # {"query": "sum by (service) (rate(…))", …}
    case.probes[0].culprits[0].labels        # {"service": "…"}

Counters read through `rate()`, histograms through `histogram_quantile`, gauges; a day of
seasonal traffic; spikes, steps that stay, slow ramps; several culprits at once; one culprit
among 10,000 series; a scrape gap and a wave of restarts (counter resets); data that ends before
the question is asked; and healthy data with nothing wrong. The data ends a little before
`now` (20 s to 2.5 min, as backfilled or remote-written data does), so the last windows of
`rate()` are partial, as they are for a real user; `stale_data` ends 25 to 30 minutes before.

These scenarios are not in `generate_all` (the integration tests backfill all of that).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType

from persai.incidents.analysis_infra import (
    haystack,
    healthy_gauges,
    multi_culprit,
    scrape_gap,
    seasonal_dip,
    seasonal_healthy,
    slow_ramp,
    stale_data,
)
from persai.incidents.analysis_model import AnalysisScenario, Case, stamped
from persai.incidents.analysis_services import (
    deploy_shift,
    healthy_latency,
    healthy_rates,
    healthy_restarts,
    latency_step,
    rate_burst,
    restart_wave,
)
from persai.incidents.model import IncidentParams, default_end

_MINUTE = timedelta(minutes=1)
_ALL = (
    AnalysisScenario("rate_burst", "40 services' counters; one's 5xx burst.", rate_burst),
    AnalysisScenario("healthy_rates", "40 services' counters, nothing wrong.", healthy_rates),
    AnalysisScenario("latency_step", "30 histograms; one service 6x slower.", latency_step),
    AnalysisScenario("deploy_shift", "A deploy slows all 30 % and one 5x.", deploy_shift),
    AnalysisScenario("healthy_latency", "30 histograms, nothing wrong.", healthy_latency),
    AnalysisScenario("restart_wave", "All workers restart; one crash-loops.", restart_wave),
    AnalysisScenario("healthy_restarts", "A rolling restart, nothing wrong.", healthy_restarts),
    AnalysisScenario(
        "slow_ramp", "60 pods' memory; one ramps up.", slow_ramp, duration=timedelta(hours=3)
    ),
    AnalysisScenario("healthy_gauges", "200 pods' memory, nothing wrong.", healthy_gauges),
    AnalysisScenario(
        "seasonal_dip",
        "A day of cyclic traffic; one service dips.",
        seasonal_dip,
        duration=timedelta(hours=24),
        step=_MINUTE,
    ),
    AnalysisScenario(
        "seasonal_healthy",
        "A day of cyclic traffic, nothing wrong.",
        seasonal_healthy,
        duration=timedelta(hours=24),
        step=_MINUTE,
    ),
    AnalysisScenario("multi_culprit", "48 pods' CPU; three misbehave at once.", multi_culprit),
    AnalysisScenario(
        "haystack",
        "10,000 partitions' lag; one grows.",
        haystack,
        duration=timedelta(hours=1),
        step=_MINUTE,
    ),
    AnalysisScenario("scrape_gap", "A gap in every series; one node floods.", scrape_gap),
    AnalysisScenario(
        "stale_data",
        "Data ends 25 min before now; one queue backed up.",
        stale_data,
        lag_s=(1500, 1800),
    ),
)

ANALYSIS_SCENARIOS: Mapping[str, AnalysisScenario] = MappingProxyType({s.name: s for s in _ALL})
"""Every analysis scenario by name, in a stable order."""

QUICK = ("rate_burst", "healthy_rates", "deploy_shift", "restart_wave", "stale_data")
"""A small subset that backfills in a second or two (CI)."""


def generate_case(name: str, seed: int = 0, now: datetime | None = None) -> Case:
    """The scenario `name` (KeyError for an unknown one) from `seed`, asked at `now` (default:
    the current minute); its data ends a seeded moment before `now`."""
    scenario = ANALYSIS_SCENARIOS[name]
    asked = now or default_end() + _MINUTE
    lag = random.Random(f"{name}:lag:{seed}").randint(*scenario.lag_s)
    params = IncidentParams(end=asked - timedelta(seconds=lag), seed=seed)
    return scenario.build(stamped(params, name, scenario), asked)


def generate_cases(
    seeds: Mapping[str, int] | Iterable[str], now: datetime | None = None
) -> list[Case]:
    """Several cases asked at the same `now`: names with their seeds, or names (seed 0)."""
    chosen = seeds if isinstance(seeds, Mapping) else dict.fromkeys(seeds, 0)
    asked = now or default_end() + _MINUTE
    return [generate_case(name, seed, asked) for name, seed in chosen.items()]
