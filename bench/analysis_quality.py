"""Result analysis benchmark: does what "stands out" in a tool result match the truth?

    uv run python bench/analysis_quality.py              # every scenario, seed 0
    uv run python bench/analysis_quality.py --fresh      # every scenario, a random seed each
    uv run python bench/analysis_quality.py --seed 3 --scenario rate_burst
    uv run python bench/analysis_quality.py --quick      # a small subset (CI)

Generates the analysis scenarios (`persai.incidents.analysis_scenarios`: counters through
`rate()`, histograms through `histogram_quantile`, gauges, seasonality, steps and ramps,
several culprits, one among 10,000 series, gaps, restarts, stale data, healthy data),
backfills them into one real Prometheus with promtool, sends each scenario's probes (the
queries a model would plausibly send) through the real tools (`execute_range_query`,
`execute_instant_query` over `UpstreamAPI`) and judges the text the model would read: culprit
ranked first, recall of the culprits, precision of "stand out", the anomaly's start named
within one step, false alarms on healthy data, tokens against the budget. Exits 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness.analysis_score import Score, score  # noqa: E402
from bench.harness.report import machine  # noqa: E402
from persai.agent.results import DEFAULT_BUDGET_TOKENS  # noqa: E402
from persai.agent.tools import ALL_TOOLS, Toolbox, ToolContext, ToolError, UpstreamAPI  # noqa: E402
from persai.incidents import default_end, to_openmetrics  # noqa: E402
from persai.incidents.analysis_model import Case, Probe  # noqa: E402
from persai.incidents.analysis_scenarios import ANALYSIS_SCENARIOS, QUICK, generate_cases  # noqa: E402
from persai.launcher import start_prometheus  # noqa: E402

MAX_BYTES = 20_000_000
"""The worker's default `tool_max_response_bytes`."""


@dataclass(frozen=True)
class Result:
    case: str
    seed: int
    probe: Probe
    score: Score
    seconds: float
    text: str


async def run_probe(url: str, case: Case, probe: Probe, session: aiohttp.ClientSession) -> Result:
    api = UpstreamAPI(session, url, label="prometheus", max_bytes=MAX_BYTES)
    context = ToolContext(prometheus=api, now=case.now, budget_tokens=DEFAULT_BUDGET_TOKENS)
    began = time.perf_counter()
    try:
        output = await Toolbox(ALL_TOOLS, timeout_s=120).call(
            context, probe.tool, json.dumps(dict(probe.arguments))
        )
        text, data = output.text, output.data or {}
    except ToolError as exc:
        text, data = f"tool error: {exc}", {}
    seconds = time.perf_counter() - began
    start = datetime.fromisoformat(data["start"]) if "start" in data else None
    figures = score(probe, text, DEFAULT_BUDGET_TOKENS, float(data.get("step_s", 0)), start)
    return Result(case.name, case.incident.params.seed, probe, figures, seconds, text)


async def run_all(url: str, cases: Sequence[Case], show: bool) -> list[Result]:
    results = []
    timeout = aiohttp.ClientTimeout(sock_connect=5, sock_read=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for case in cases:
            for probe in case.probes:
                result = await run_probe(url, case, probe, session)
                results.append(result)
                if show:
                    print(f"--- {describe(result)}\n{result.text}\n", flush=True)
    return results


def describe(result: Result) -> str:
    s = result.score
    kind = "range" if result.probe.tool == "execute_range_query" else "instant"
    query = result.probe.arguments["query"]
    query = query if len(query) <= 60 else query[:57] + "..."
    if s.first is None:
        verdict = f"healthy: {s.flagged} stand out"
    else:
        precision = f"{s.true_flagged / s.flagged:.2f}" if s.flagged else "-"
        verdict = (
            f"first {'yes' if s.first else 'NO'}, recall {s.found}/{s.culprits}, "
            f"precision {precision} ({s.true_flagged}/{s.flagged}), "
            f"window {s.windows}/{s.culprits if kind == 'range' else 0}"
        )
    return (
        f"{result.case} (seed {result.seed}) {kind} `{query}`: {verdict}; "
        f"tokens {s.tokens}/{s.budget}; {result.seconds:.2f} s"
    )


def totals(results: Sequence[Result]) -> tuple[list[str], list[str]]:
    """The total figures, and the targets missed."""
    scores = [r.score for r in results]
    guilty = [s for s in scores if s.first is not None]
    healthy = [s for s in scores if s.first is None]
    flagged = sum(s.flagged for s in scores)
    true_flagged = sum(s.true_flagged for s in scores)
    culprits = sum(s.culprits for s in guilty)
    found = sum(s.found for s in guilty)
    ranged = [
        r.score
        for r in results
        if r.probe.tool == "execute_range_query" and r.score.first is not None
    ]
    first = sum(1 for s in guilty if s.first)
    precision = true_flagged / flagged if flagged else 1.0
    recall = found / culprits if culprits else 1.0
    false_alarms = sum(s.flagged for s in healthy)
    over = [s for s in scores if s.tokens > s.budget]
    lines = [
        f"culprit ranked first: {first} of {len(guilty)} probes with a culprit",
        f"recall of culprit series: {recall:.3f} ({found} of {culprits})",
        f"precision of stand out: {precision:.3f} ({true_flagged} of {flagged} flagged)",
        f"window named within one step: {sum(s.windows for s in ranged)} of "
        f"{sum(s.culprits for s in ranged)} culprits of range probes",
        f"false alarms on healthy data: {false_alarms} series in "
        f"{sum(1 for s in healthy if s.flagged)} of {len(healthy)} healthy probes",
        f"tokens: max {max((s.tokens for s in scores), default=0)}, total "
        f"{sum(s.tokens for s in scores)}, budget {DEFAULT_BUDGET_TOKENS} per result, "
        f"{len(over)} over",
    ]
    missed = []
    if first < len(guilty):
        missed.append("culprit first")
    if precision < 0.9:
        missed.append("precision >= 0.9")
    if recall < 1.0:
        missed.append("recall 1.0")
    if false_alarms:
        missed.append("nothing stands out on healthy data")
    if over:
        missed.append("within the token budget")
    return lines, missed


def seeds_for(names: Sequence[str], seed: int, fresh: bool) -> dict[str, int]:
    draw = random.SystemRandom()
    return {name: draw.randrange(1, 1_000_000) if fresh else seed for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--seed", type=int, default=0, help="the seed of every scenario")
    parser.add_argument("--fresh", action="store_true", help="a random seed per scenario")
    parser.add_argument("--scenario", action="append", choices=list(ANALYSIS_SCENARIOS))
    parser.add_argument("--show", action="store_true", help="print each tool result")
    parser.add_argument(
        "--now", type=datetime.fromisoformat, help="when the questions are asked (RFC 3339)"
    )
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.WARNING)  # the figures, not the clients' request logs
    names = args.scenario or (QUICK if args.quick else list(ANALYSIS_SCENARIOS))
    seeds = seeds_for(names, args.seed, args.fresh)
    print(f"== analysis quality{' (quick)' if args.quick else ''}", flush=True)
    print(f"machine: {machine()}", flush=True)
    now = args.now or default_end() + timedelta(minutes=1)
    print("seeds: " + " ".join(f"{name}={seed}" for name, seed in seeds.items()), flush=True)
    print(f"asked at: {now:%Y-%m-%dT%H:%M:%SZ} (--now to ask again at the same moment)", flush=True)
    began = time.perf_counter()
    cases = generate_cases(seeds, now)
    text = to_openmetrics(case.incident for case in cases)
    generated_s = time.perf_counter() - began
    series = sum(case.incident.series_count for case in cases)
    with (
        tempfile.TemporaryDirectory() as work,
        start_prometheus(Path(work), openmetrics=text) as server,
    ):
        print(
            f"data: {series:,} series, OpenMetrics {len(text) / 1e6:.1f} MB generated in "
            f"{generated_s:.2f} s; promtool backfill {server.backfill_s:.2f} s; "
            f"Prometheus ready in {server.startup_s:.2f} s",
            flush=True,
        )
        results = asyncio.run(run_all(server.url, cases, args.show))
    for result in results:
        print(describe(result))
    lines, missed = totals(results)
    for line in lines:
        print(line)
    print(f"targets: {'met' if not missed else 'MISSED: ' + ', '.join(missed)}")
    if missed:
        sys.exit(1)


if __name__ == "__main__":
    main()
