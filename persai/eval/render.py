"""Evaluation results as terminal tables: one model's run, and several runs side by side."""

from __future__ import annotations

from collections.abc import Sequence

from persai.ask import BOLD, DIM, GREEN, RED, Console
from persai.eval.report import CHECK_NAMES, CheckTotal, ModelRun, Report, ScenarioResult, Totals

_HEADINGS = {"culprit": "culprit", "window": "window", "promql": "promql", "uncertainty": "unsure"}
_MARKS = {True: "✓", False: "✗", None: "-"}


def render_run(run: ModelRun, console: Console) -> None:
    """One model's results: a row per scenario, the totals, then why each failure failed."""
    width = max([len("scenario"), len("total")] + [len(r.scenario) for r in run.results]) + 2
    header = "scenario".ljust(width) + "result  "
    header += "".join(_HEADINGS[name].ljust(9) for name in CHECK_NAMES)
    header += f"{'tools':>6}{'tokens':>9}{'wall':>9}\n"
    console.write(f"\nmodel {run.model}\n", BOLD)
    console.write(header, DIM)
    for result in run.results:
        score = result.score
        verdicts = score.checks.model_dump()
        console.write(result.scenario.ljust(width))
        console.write("pass    " if score.passed else "FAIL    ", GREEN if score.passed else RED)
        console.write("".join(_MARKS[verdicts[name]].ljust(9) for name in CHECK_NAMES))
        console.write(_cost(score.tool_calls, score.tokens, score.wall_s) + "\n")
    totals = run.totals
    console.write("total".ljust(width) + f"{totals.passed}/{totals.scenarios}".ljust(8), BOLD)
    console.write("".join(_fraction(totals.checks[name]).ljust(9) for name in CHECK_NAMES))
    tokens = totals.input_tokens + totals.output_tokens
    console.write(_cost(totals.tool_calls, tokens, totals.wall_s) + "\n")
    for result in run.results:
        if not result.score.passed:
            reasons = "; ".join(result.score.reasons) or "failed"
            console.write(f"  {result.scenario}: {reasons}\n", DIM)


def _cost(tool_calls: int, tokens: int, wall_s: float) -> str:
    return f"{tool_calls:>6}{tokens:>9,}{wall_s:>8.1f}s"


def _fraction(total: CheckTotal) -> str:
    return f"{total.met}/{total.applicable}" if total.applicable else "-"


def render_comparison(reports: Sequence[tuple[str, Report]], console: Console) -> None:
    """Runs of several reports side by side: per scenario its verdict and cost in each run.

    A cell reads `pass ✓✓✓-  4 tools   3,210 tok   12.3s`: the checks are culprit, window,
    promql and uncertainty, in that order (`-`: does not apply).
    """
    columns = [(f"{label}: {run.model}", run) for label, report in reports for run in report.runs]
    scenarios = list(dict.fromkeys(result.scenario for _, run in columns for result in run.results))
    width = max([len("scenario"), len("total")] + [len(name) for name in scenarios]) + 2
    cell = max([_CELL] + [len(title) + 2 for title, _ in columns])
    for label, report in reports:
        console.write(f"{label}: {report.url}, data ending {report.data_end:%Y-%m-%d %H:%M} UTC, ")
        console.write(f"seed {report.seed}, suite {report.suite}\n", DIM)
    console.write("\n" + "scenario".ljust(width), DIM)
    console.write("".join(title.ljust(cell) for title, _ in columns).rstrip() + "\n", BOLD)
    for name in scenarios:
        console.write(name.ljust(width))
        for _, run in columns:
            result = next((r for r in run.results if r.scenario == name), None)
            _result_cell(result, console, cell)
        console.write("\n")
    console.write("total".ljust(width), BOLD)
    console.write("".join(_pad(_totals_cell(run.totals), cell) for _, run in columns), BOLD)
    console.write("\n" + "checks: culprit, window, promql, uncertainty (- does not apply)\n", DIM)


_CELL = 42
"""Characters per run in a comparison: a verdict and its cost, and room between runs."""


def _pad(text: str, width: int) -> str:
    """The text filled to `width`, and at least two spaces after it whatever its length."""
    return text + " " * max(2, width - len(text))


def _result_cell(result: ScenarioResult | None, console: Console, width: int) -> None:
    if result is None:
        console.write("not run".ljust(width), DIM)
        return
    score = result.score
    verdicts = score.checks.model_dump()
    marks = "".join(_MARKS[verdicts[name]] for name in CHECK_NAMES)
    console.write("pass" if score.passed else "FAIL", GREEN if score.passed else RED)
    text = f" {marks} {score.tool_calls:>2} tools {score.tokens:>9,} tok {score.wall_s:>7.1f}s"
    console.write(_pad(text, width - 4))


def _totals_cell(totals: Totals) -> str:
    tokens = totals.input_tokens + totals.output_tokens
    passed = f"{totals.passed}/{totals.scenarios} pass"
    return f"{passed:<9} {totals.tool_calls:>3} tools {tokens:>9,} tok {totals.wall_s:>7.1f}s"
