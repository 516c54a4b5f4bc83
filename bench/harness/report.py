"""The figures a benchmark prints: the machine first, then `name: value` lines.

Every figure is meant to be read against a baseline measured in the same run (a ratio or a
percentile next to its baseline): the machines these run on are small and shared.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (`/proc/cpuinfo`), or the platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    """One line: cores usable by this process, CPU model, Python, platform, date (UTC)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{usable} cores ({cpu_model()}), Python {platform.python_version()}, "
        f"{platform.platform()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def percentile(values: Sequence[float], pct: float) -> float:
    """The pct-th percentile (nearest rank, 0 < pct <= 100) of values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(values_s: Sequence[float]) -> str:
    """`p50 … ms, p99 … ms, mean … ms (n=…)` for durations in seconds."""
    return (
        f"p50 {percentile(values_s, 50) * 1000:.2f} ms, p99 {percentile(values_s, 99) * 1000:.2f} "
        f"ms, mean {statistics.fmean(values_s) * 1000:.2f} ms (n={len(values_s)})"
    )


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline > 0 else math.inf


def verdict(measured: float, target: float, *, at_most: bool = True) -> str:
    """`met` or `MISSED` for a ratio against its target (`at_most`: lower is better)."""
    met = measured <= target if at_most else measured >= target
    sign = "<=" if at_most else ">="
    return f"{'met' if met else 'MISSED'} (target {sign} {target:g}x)"


class Report:
    """Prints a benchmark's title, the machine and its figures as they come."""

    def __init__(self, title: str, *, quick: bool) -> None:
        self.title = title
        # llama_stack_client configures the root logger at INFO when imported; the figures
        # are what this process prints, not the clients' request logs.
        logging.getLogger().setLevel(logging.WARNING)
        print(f"== {title}{' (quick)' if quick else ''}", flush=True)
        print(f"machine: {machine()}", flush=True)

    def figure(self, name: str, value: str) -> None:
        print(f"{name}: {value}", flush=True)

    def note(self, text: str) -> None:
        print(f"  # {text}", flush=True)


def arguments(description: str | None) -> argparse.ArgumentParser:
    """The parser every benchmark starts from: `--quick` and where logs go."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: seconds, for CI (figures not judged)"
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the servers' logs and print where they are"
    )
    return parser
