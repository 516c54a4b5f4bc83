"""Tool output benchmark: a range query over 1,000 series x 240 points, raw against compact.

    uv run python bench/tool_output.py            # through a real Prometheus (promtool backfill)
    uv run python bench/tool_output.py --quick    # from the generated samples, no Prometheus
    uv run python bench/tool_output.py --update-readme   # also rewrite bench/README.md's section

Prints the raw `/api/v1/query_range` response size (bytes, estimated tokens) against the compact
rendering the model sees, their ratio, whether the injected anomaly's series and time are still
named, and the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from persai.agent.results import DEFAULT_BUDGET_TOKENS, estimate_tokens, render_range  # noqa: E402
from persai.incidents import Incident, IncidentParams, generate  # noqa: E402
from persai.launcher import start_prometheus  # noqa: E402

README = ROOT / "bench" / "README.md"
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@dataclass
class Figures:
    source: str
    series: int
    points: int
    raw_bytes: int
    raw_tokens: int
    compact_bytes: int
    compact_tokens: int
    render_s: float
    culprit_named: bool
    time_named: bool
    prometheus_note: str


def fetch_from_prometheus(incident: Incident, start: datetime) -> tuple[str, str]:
    """The raw response text of the range query, and a note on Prometheus' start-up."""
    with tempfile.TemporaryDirectory() as work:
        began = time.perf_counter()
        text = incident.openmetrics()
        generate_s = time.perf_counter() - began
        server = start_prometheus(Path(work), openmetrics=text)
        with server:
            response = httpx.get(
                f"{server.url}/api/v1/query_range",
                params={
                    "query": incident.truth.query,
                    "start": start.timestamp(),
                    "end": incident.params.end.timestamp(),
                    "step": incident.params.step_s,
                },
                timeout=60,
            )
            response.raise_for_status()
        note = (
            f"OpenMetrics text {len(text) / 1e6:.1f} MB generated in {generate_s:.2f} s; "
            f"promtool backfill {server.backfill_s:.2f} s; Prometheus ready in "
            f"{server.startup_s:.2f} s"
        )
        return response.text, note


def fabricate(incident: Incident, start: datetime) -> str:
    """The response Prometheus would give, built from the generated samples (for --quick)."""
    first = start.timestamp()
    result: list[dict[str, object]] = []
    for family in incident.families:
        for name, labels, samples in family.series:
            # Prometheus carries the last sample forward to `end`; one step earlier keeps 240.
            values = [[t, _number(v)] for t, v in samples if t >= first - incident.params.step_s]
            metric: dict[str, str] = {**labels, "__name__": name}
            result.append({"metric": metric, "values": values})
    body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    return json.dumps(body, separators=(",", ":"))


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def measure(quick: bool, seed: int) -> Figures:
    incident = generate("high_cardinality", IncidentParams(seed=seed))
    params, truth = incident.params, incident.truth
    start = params.start + timedelta(seconds=params.step_s)  # 240 points up to `end`
    have_prometheus = bool(shutil.which("prometheus") and shutil.which("promtool"))
    if quick or not have_prometheus:
        raw, source = fabricate(incident, start), "generated samples (no Prometheus)"
        note = "" if quick else "prometheus/promtool not found: apt-get install prometheus"
    else:
        raw, note = fetch_from_prometheus(incident, start)
        source = "real Prometheus 2.x over HTTP"
    data = json.loads(raw)["data"]
    began = time.perf_counter()
    out = render_range(
        data, query=truth.query, start=start, end=params.end, step_s=float(params.step_s)
    )
    render_s = time.perf_counter() - began
    print(out)
    print()
    top = next((line for line in out.splitlines() if line.startswith("- ")), "")
    window = (truth.window_start, truth.window_end)
    slack = timedelta(seconds=2 * params.step_s)
    times = [datetime.fromisoformat(t) for t in _TIME.findall(top)]
    assert window[0] is not None
    assert window[1] is not None
    return Figures(
        source=source,
        series=len(data["result"]),
        points=max(len(s["values"]) for s in data["result"]),
        raw_bytes=len(raw.encode()),
        raw_tokens=estimate_tokens(raw),
        compact_bytes=len(out.encode()),
        compact_tokens=estimate_tokens(out),
        render_s=render_s,
        culprit_named=f'"{truth.culprit_value}"' in top,
        time_named=any(window[0] - slack <= t <= window[1] + slack for t in times),
        prometheus_note=note,
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return (
        f"{os.cpu_count()} CPUs, {platform.platform()}, {cpu}, Python {platform.python_version()}"
    )


def report(figures: Figures) -> list[str]:
    ratio = figures.raw_tokens / max(1, figures.compact_tokens)
    return [
        f"| source | {figures.source} |",
        f"| series x points | {figures.series:,} x {figures.points} |",
        f"| raw response | {figures.raw_bytes:,} bytes, ~{figures.raw_tokens:,} tokens "
        f"(~{figures.raw_bytes // 4:,} at 4 bytes/token) |",
        f"| compact output | {figures.compact_bytes:,} bytes, ~{figures.compact_tokens:,} tokens "
        f"(~{figures.compact_bytes // 4:,} at 4 bytes/token; budget {DEFAULT_BUDGET_TOKENS:,}) |",
        f"| ratio (tokens) | {ratio:,.0f}x smaller |",
        f"| rendering time | {figures.render_s:.2f} s |",
        f"| anomalous series named first | {'yes' if figures.culprit_named else 'NO'} |",
        f"| its time named (within the window) | {'yes' if figures.time_named else 'NO'} |",
    ]


def update_readme(rows: list[str], command: str, figures: Figures) -> None:
    section = "\n".join(
        [
            "## Tool output",
            "",
            "A range query over the `high_cardinality` incident (1,000 series x 240 points, one",
            "queue backing up for ten minutes), rendered for the model with the default budget.",
            "Tokens are `persai.agent.results.estimate_tokens` estimates (digit runs / 3, letter",
            "runs / 4, one per punctuation mark), applied alike to both sides.",
            "",
            f"Command: `{command}`; run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}.",
            "",
            "| | |",
            "| --- | --- |",
            *rows,
            "",
            *([f"Prometheus: {figures.prometheus_note}.", ""] if figures.prometheus_note else []),
        ]
    )
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n\n"
    pattern = re.compile(r"^## Tool output\n.*?(?=^## |\Z)", re.S | re.M)
    text = (
        pattern.sub(lambda _: section + "\n", text)
        if pattern.search(text)
        else (text.rstrip("\n") + "\n\n" + section + "\n")
    )
    README.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip Prometheus; use the samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--update-readme", action="store_true", help="rewrite bench/README.md")
    args = parser.parse_args()
    figures = measure(args.quick, args.seed)
    rows = report(figures)
    print("\n".join(rows))
    print(f"| machine | {machine()} |")
    if figures.prometheus_note:
        print(f"Prometheus: {figures.prometheus_note}")
    if args.update_readme:
        command = "uv run python bench/tool_output.py" + (" --quick" if args.quick else "")
        update_readme(rows, command, figures)
        print(f"wrote {README.relative_to(ROOT)}")
    if not (figures.culprit_named and figures.time_named):
        sys.exit(1)


if __name__ == "__main__":
    main()
