"""An evaluation's results: per scenario and model, with totals; saved and read as JSON."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError, computed_field

from persai.eval.scoring import Checks, Score

REPORT_FORMAT: Literal["persai-eval/1"] = "persai-eval/1"
CHECK_NAMES: tuple[str, ...] = tuple(Checks.model_fields)


class ReportError(ValueError):
    """A report file that cannot be read."""


class ScenarioResult(BaseModel):
    """One scenario asked of one model: the investigation, its answer and its score."""

    scenario: str
    generator: str
    model: str
    investigation_id: str | None = None
    status: str
    """The investigation's final status, or `not_submitted` / `timed_out`."""
    error: str | None = None
    question: str
    answer: str | None = None
    score: Score


class CheckTotal(BaseModel):
    met: int = 0
    applicable: int = 0


class Totals(BaseModel):
    scenarios: int
    passed: int
    checks: dict[str, CheckTotal]
    tool_calls: int
    model_calls: int
    input_tokens: int
    output_tokens: int
    wall_s: float


def totals_of(results: list[ScenarioResult]) -> Totals:
    """Passes, checks met of those that apply, and the summed cost."""
    checks = {name: CheckTotal() for name in CHECK_NAMES}
    for result in results:
        for name, verdict in result.score.checks.model_dump().items():
            if verdict is not None:
                checks[name].applicable += 1
                checks[name].met += int(verdict)
    scores = [result.score for result in results]
    return Totals(
        scenarios=len(results),
        passed=sum(score.passed for score in scores),
        checks=checks,
        tool_calls=sum(score.tool_calls for score in scores),
        model_calls=sum(score.model_calls for score in scores),
        input_tokens=sum(score.input_tokens for score in scores),
        output_tokens=sum(score.output_tokens for score in scores),
        wall_s=round(sum(score.wall_s for score in scores), 3),
    )


class ModelRun(BaseModel):
    """Every scenario asked of one model."""

    model: str
    results: list[ScenarioResult]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def totals(self) -> Totals:
        return totals_of(self.results)


class Report(BaseModel):
    """What `persai eval --report FILE` writes and `persai eval compare` reads."""

    format: Literal["persai-eval/1"] = REPORT_FORMAT
    url: str
    suite: str
    seed: int | None
    data_end: datetime
    started_at: datetime
    finished_at: datetime | None = None
    runs: list[ModelRun]


def save_report(report: Report, path: Path) -> None:
    """Write the report as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")


def load_report(path: Path) -> Report:
    """Read a report written by `save_report`; ReportError when it is not one."""
    try:
        return Report.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        raise ReportError(f"{path} is not a persai eval report: {exc}") from exc
