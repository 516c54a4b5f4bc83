"""Evaluating investigations: any model, incident scenarios over real Prometheus data, scores.

    suite = load_suite(None)                      # the built-in scenarios (or a YAML/JSON file)
    cases = prepare(suite, end=end)               # incidents generated, expectations resolved
    write_data(cases, Path("eval.om"))            # OpenMetrics for promtool's backfill
    run = run_model(EvalClient(http), cases, "openai/gpt-4o")   # asked through the public API
    score(answer, steps, usage, case.expected)    # the pure scoring function

`persai eval` (see `run_eval`) wraps this for the command line; docs/evaluation.md explains it.
"""

from persai.eval.command import EvalOptions, run_eval
from persai.eval.render import render_comparison, render_run
from persai.eval.report import (
    CheckTotal,
    ModelRun,
    Report,
    ReportError,
    ScenarioResult,
    Totals,
    load_report,
    save_report,
    totals_of,
)
from persai.eval.runner import EvalClient, EvalError, run_case, run_model
from persai.eval.scoring import Checks, Expected, Score, score
from persai.eval.suite import (
    Case,
    EvalScenario,
    Expectation,
    Suite,
    SuiteError,
    expected_of,
    load_suite,
    prepare,
    write_data,
)

__all__ = [
    "Case",
    "CheckTotal",
    "Checks",
    "EvalClient",
    "EvalError",
    "EvalOptions",
    "EvalScenario",
    "Expectation",
    "Expected",
    "ModelRun",
    "Report",
    "ReportError",
    "ScenarioResult",
    "Score",
    "Suite",
    "SuiteError",
    "Totals",
    "expected_of",
    "load_report",
    "load_suite",
    "prepare",
    "render_comparison",
    "render_run",
    "run_case",
    "run_eval",
    "run_model",
    "save_report",
    "score",
    "totals_of",
    "write_data",
]
