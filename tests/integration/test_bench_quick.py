"""The benchmarks keep working: each one's `--quick` mode runs and prints its figures.

The figures are not judged here (CI machines are small and shared); bench/README.md holds the
measured ones. A benchmark exits non-zero when what it measures went wrong (an investigation
that failed, an event a subscriber missed, a request refused), and that is a failure here.
The analysis benchmark's figures are judged: they do not depend on the machine.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.prometheus import require_binaries
from tests.support.redis import require_redis_server

ROOT = Path(__file__).resolve().parents[2]

FIGURES = {
    "queue_overhead": [
        r"baseline: Celery no-op round trip.*p50 [\d.]+ ms, p99 [\d.]+ ms",
        r"PersAI submit -> done \(auth on, events over SSE\): p50 [\d.]+ ms",
        r"/ baseline: p50 [\d.]+x, p99 [\d.]+x",
    ],
    "concurrency": [
        r"one investigation alone: median [\d.]+ s",
        r"each batch, ratio to one alone: [\d.]+x",
        r"ratio to one alone: [\d.]+x",
        r"succeeded: (\d+) of \1\b",
        r"worker memory: peak RSS \(VmHWM\) \d+ MiB",
    ],
    "http_client": [
        r"aiohttp, CPU ms per request: median [\d.]+",
        r"httpx / aiohttp: [\d.]+x the CPU per request",
    ],
    "auth_polling": [
        r"GET /healthz \(no auth\): \d+ req/s",
        r"Perses cookies: \d+ req/s",
        r"cookies / healthz: [\d.]+x",
        r"Perses calls: \d+ refresh \+ \d+ whoami during \d+ polls",
    ],
    "sse_fanout": [
        r"subscribers that received every event, in order, once: (\d+) of \1\b",
        r"delivery lag of the \d+ stamped answer pieces: p50 [\d.]+ ms, p99 [\d.]+ ms",
    ],
    "scale_out": [
        r"1 worker process: \d+ investigations/s",
        r"2 worker processes: \d+ investigations/s",
    ],
}


@pytest.mark.parametrize("bench", sorted(FIGURES))
def test_quick_mode_runs_and_prints_its_figures(bench: str) -> None:
    require_redis_server()
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{bench}.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert re.search(r"^machine: \d+ cores \(.+\), Python \d", done.stdout, re.M), done.stdout
    for figure in FIGURES[bench]:
        assert re.search(figure, done.stdout), f"{figure!r} not in:\n{done.stdout}"


def test_analysis_quality_quick_meets_its_targets() -> None:
    """Unlike the service benchmarks, what this one measures does not depend on the machine:
    the quick library through a real Prometheus and the real tools must meet every target."""
    require_binaries()
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "analysis_quality.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, (out + done.stderr)[-6000:]
    assert re.search(r"^machine: \d+ cores \(.+\), Python \d", out, re.M), out
    first = re.search(r"^culprit ranked first: (\d+) of (\d+) probes", out, re.M)
    assert first, out
    assert first.group(1) == first.group(2) != "0", out
    assert re.search(r"^recall of culprit series: 1\.000 ", out, re.M), out
    precision = re.search(r"^precision of stand out: ([\d.]+) ", out, re.M)
    assert precision, out
    assert float(precision.group(1)) >= 0.9, out
    assert re.search(r"^false alarms on healthy data: 0 series in 0 of [1-9]", out, re.M), out
    assert re.search(r"^tokens: max \d+, .*, 0 over$", out, re.M), out
    assert re.search(r"^targets: met$", out, re.M), out
