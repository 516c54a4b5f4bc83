"""`persai eval`: write the scenarios' data, run them against a PersAI, compare two reports.

persai eval --write-data eval.om                 # data for promtool; prints its end time
persai eval --end 2026-11-24T14:00:00Z --model A --model B --report out.json
persai eval compare a.json b.json
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import httpx

from persai.agent.timeparse import parse_time, rfc3339
from persai.ask import DIM, GREEN, RED, Console
from persai.client import open_client
from persai.eval.render import render_comparison, render_run
from persai.eval.report import Report, ReportError, ScenarioResult, load_report, save_report
from persai.eval.runner import EvalClient, EvalError, run_model
from persai.eval.suite import Suite, SuiteError, load_suite, prepare, write_data
from persai.incidents import default_end


@dataclass(frozen=True)
class EvalOptions:
    """What `persai eval` was asked to do (see `persai eval --help`)."""

    url: str = "http://127.0.0.1:8000"
    token: str | None = None
    models: list[str] = field(default_factory=list)
    scenarios: Path | None = None
    only: list[str] = field(default_factory=list)
    datasource: str | None = None
    seed: int | None = None
    end: datetime | None = None
    write_data: Path | None = None
    report: Path | None = None
    parallel: int = 1
    timeout_s: float = 900.0
    compare: list[Path] = field(default_factory=list)
    alert: bool = False
    """Ask each case as the alert its incident would fire (`persai.alerts.evaluation`)."""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> EvalOptions:
        """The options from `persai eval`'s parsed command line."""
        try:
            end = parse_time(args.end, datetime.now(UTC)) if args.end else None
        except ValueError as exc:
            raise SystemExit(f"persai eval: --end: {exc}") from exc
        return cls(
            url=args.url,
            token=args.token,
            models=list(args.model or []),
            scenarios=Path(args.scenarios) if args.scenarios else None,
            only=[name for value in args.only or [] for name in value.split(",") if name],
            datasource=args.datasource,
            seed=args.seed,
            end=end,
            write_data=Path(args.write_data) if args.write_data else None,
            report=Path(args.report) if args.report else None,
            parallel=args.parallel,
            timeout_s=args.timeout,
            compare=[Path(p) for p in (args.reports or [])],
            alert=bool(getattr(args, "alert", False)),
        )


def run_eval(
    options: EvalOptions, out: TextIO, *, transport: httpx.BaseTransport | None = None
) -> int:
    """Compare reports, write data or run the evaluation; 0 when every scenario passed.

    `transport` replaces the network (tests pass a fake PersAI in).
    """
    console = Console(out, colour=out.isatty())
    try:
        if options.compare:
            return _compare(options.compare, console)
        suite = load_suite(options.scenarios).select(options.only)
        if options.write_data is not None:
            return _write(suite, options, options.write_data, console)
        return _run(suite, options, console, transport)
    except (SuiteError, ReportError, EvalError) as exc:
        raise SystemExit(f"persai eval: {exc}") from exc


def _compare(paths: list[Path], console: Console) -> int:
    if len(paths) < 2:
        raise SystemExit("persai eval compare: give two reports (or more)")
    labels = [chr(ord("A") + i) if i < 26 else f"R{i}" for i in range(len(paths))]
    for label, path in zip(labels, paths, strict=True):
        console.write(f"{label} = {path}\n", DIM)
    render_comparison([(lb, load_report(p)) for lb, p in zip(labels, paths, strict=True)], console)
    return 0


def _write(suite: Suite, options: EvalOptions, path: Path, console: Console) -> int:
    end = options.end or default_end()
    cases = prepare(suite, end=end, seed=options.seed, datasource=options.datasource)
    series = write_data(cases, path)
    seed = options.seed if options.seed is not None else suite.seed
    console.write(
        f"wrote {series:,} series of {len(cases)} scenarios to {path}, "
        f"{rfc3339(cases[0].start)} to {rfc3339(end)}\n"
    )
    again = f" --scenarios {options.scenarios}" if options.scenarios else ""
    again += f" --only {','.join(options.only)}" if options.only else ""
    console.write(
        "next: backfill it into the Prometheus that PersAI's datasource "
        f"{cases[0].datasource} reads (docs/evaluation.md):\n"
        f"  promtool tsdb create-blocks-from openmetrics {path} <prometheus data dir>\n"
        f"then: persai eval --end {rfc3339(end)} --seed {seed}{again} --report report.json\n",
        DIM,
    )
    return 0


def _run(
    suite: Suite, options: EvalOptions, console: Console, transport: httpx.BaseTransport | None
) -> int:
    if options.end is None:
        raise SystemExit(
            "persai eval: --end is required: the end of the data that "
            "`persai eval --write-data` wrote (it printed it)"
        )
    cases = prepare(suite, end=options.end, seed=options.seed, datasource=options.datasource)
    if options.alert:
        from persai.alerts.evaluation import as_alert  # persai.alerts imports persai.eval

        cases = [as_alert(case) for case in cases]
    started = datetime.now(UTC)
    timeout = httpx.Timeout(30.0)
    with open_client(options.url, options.token, timeout=timeout, transport=transport) as http:
        client = EvalClient(http)
        available, default = client.models()  # also: fail fast when PersAI cannot be reached
        unknown = [model for model in options.models if model not in available]
        if unknown:
            listed = ", ".join(available) or "none"
            raise EvalError(f"unknown model {unknown[0]!r}; available: {listed}")
        models: list[str | None] = list(options.models) or [default]
        runs = []
        for model in models:
            console.write(f"asking {len(cases)} scenarios of {model or 'the default model'}\n")
            run = run_model(
                client,
                cases,
                model,
                timeout_s=options.timeout_s,
                parallel=options.parallel,
                progress=lambda result: _progress(result, console),
            )
            runs.append(run)
            render_run(run, console)
    report = Report(
        url=options.url,
        suite=str(options.scenarios or "built-in"),
        seed=options.seed if options.seed is not None else suite.seed,
        data_end=options.end,
        started_at=started,
        finished_at=datetime.now(UTC),
        runs=runs,
    )
    if options.report is not None:
        save_report(report, options.report)
        console.write(f"\nreport written to {options.report}\n", DIM)
    return 0 if all(r.score.passed for run in runs for r in run.results) else 1


def _progress(result: ScenarioResult, console: Console) -> None:
    passed = result.score.passed
    console.write(f"  {result.scenario}: ")
    console.write("pass" if passed else "FAIL", GREEN if passed else RED)
    console.write(f" ({result.score.wall_s:.1f} s, {result.status})\n", DIM)
