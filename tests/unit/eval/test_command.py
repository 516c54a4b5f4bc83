"""`persai eval`: its command line, the data it writes, a whole run, reports and comparisons."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from persai.eval import EvalOptions, load_report, load_suite, prepare, run_eval
from tests.support.eval_api import END, FakePersAI, good_answer, options


def test_the_command_line_becomes_options() -> None:
    parsed = options(
        "--url", "http://persai:8000", "--token", "t", "--model", "a/x", "--model", "b/y",
        "--only", "latency,errors", "--only", "quiet-day", "--end", "2026-11-24T14:00:00Z",
        "--seed", "4", "--report", "r.json", "--parallel", "3", "--timeout", "60",
        "--datasource", "/proxy/globaldatasources/mine",
    )  # fmt: skip
    assert parsed == EvalOptions(
        url="http://persai:8000",
        token="t",
        models=["a/x", "b/y"],
        only=["latency", "errors", "quiet-day"],
        end=END,
        seed=4,
        report=Path("r.json"),
        parallel=3,
        timeout_s=60.0,
        datasource="/proxy/globaldatasources/mine",
    )
    assert options("compare", "a.json", "b.json").compare == [Path("a.json"), Path("b.json")]
    with pytest.raises(SystemExit, match="--end: not a time"):
        options("--end", "yesterday")


def test_write_data_prints_the_end_that_the_run_then_needs(tmp_path: Path) -> None:
    out = io.StringIO()
    target = tmp_path / "eval.om"
    argv = ["--write-data", str(target), "--only", "latency", "--end", "2026-11-24T14:00:30Z"]
    assert run_eval(options(*argv), out) == 0
    text = out.getvalue()
    assert "to 2026-11-24T14:00:30Z" in text
    assert f"promtool tsdb create-blocks-from openmetrics {target}" in text
    assert "/proxy/globaldatasources/eval" in text
    printed = re.search(r"persai eval (--end \S+ --seed \d+ --only latency) --report", text)
    assert printed is not None
    again = options(*printed.group(1).split())
    (case,) = prepare(load_suite().select(["latency"]), end=again.end or END, seed=again.seed)
    assert target.read_text() == case.incident.openmetrics()


def test_a_run_without_the_datas_end_is_refused() -> None:
    with pytest.raises(SystemExit, match="--end is required"):
        run_eval(options(), io.StringIO())
    with pytest.raises(SystemExit, match="persai eval: no scenario named nope"):
        run_eval(options("--only", "nope"), io.StringIO())


def run_against_fake(
    tmp_path: Path, *models: str, fake: FakePersAI | None = None
) -> tuple[int, str, FakePersAI]:
    fake = fake or FakePersAI(good_answer, polls=1)
    out = io.StringIO()
    argv = ["--only", "latency,quiet-day", "--end", "2026-11-24T14:00:00Z"]
    argv += ["--report", str(tmp_path / "report.json"), "--url", "http://persai"]
    for model in models:
        argv += ["--model", model]
    code = run_eval(options(*argv), out, transport=httpx.MockTransport(fake))
    return code, out.getvalue(), fake


def test_a_run_prints_a_table_and_writes_a_report(tmp_path: Path) -> None:
    code, text, fake = run_against_fake(tmp_path, "llm/a", "llm/b")
    assert code == 1  # one scenario failed
    assert [body["model"] for body in fake.bodies] == ["llm/a", "llm/a", "llm/b", "llm/b"]
    assert "model llm/b" in text
    rows = [line.split() for line in text.splitlines()]
    latency = next(row for row in rows if row[:2] == ["latency", "pass"])
    assert latency[:8] == ["latency", "pass", "✓", "✓", "✓", "-", "1", "1,050"]
    assert any(r[:3] == ["quiet-day", "FAIL", "-"] for r in rows)
    assert any(r[:3] == ["total", "1/2", "1/1"] for r in rows)
    assert "quiet-day: blames a cause although nothing is wrong" in text
    report = load_report(tmp_path / "report.json")
    assert [run.model for run in report.runs] == ["llm/a", "llm/b"]
    assert report.data_end == END
    assert report.seed == 1
    assert report.suite == "built-in"
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["format"] == "persai-eval/1"
    assert saved["runs"][0]["totals"]["passed"] == 1
    assert saved["runs"][0]["results"][0]["score"]["checks"]["culprit"] is True


def test_an_unknown_model_stops_the_run_before_any_question(tmp_path: Path) -> None:
    fake = FakePersAI(good_answer, polls=1)
    with pytest.raises(SystemExit, match=r"unknown model 'llm/c'; available: llm/a, llm/b"):
        run_against_fake(tmp_path, "llm/a", "llm/c", fake=fake)
    assert fake.bodies == []


def test_compare_shows_reports_side_by_side(tmp_path: Path) -> None:
    run_against_fake(tmp_path, "llm/a")
    (tmp_path / "report.json").rename(tmp_path / "a.json")
    run_against_fake(tmp_path, "llm/b")
    out = io.StringIO()
    paths = [str(tmp_path / "a.json"), str(tmp_path / "report.json")]
    assert run_eval(options("compare", *paths), out) == 0
    text = out.getvalue()
    assert f"A = {paths[0]}" in text
    assert f"B = {paths[1]}" in text
    header = next(line for line in text.splitlines() if line.startswith("scenario"))
    assert "A: llm/a" in header
    assert "B: llm/b" in header
    latency = next(line for line in text.splitlines() if line.startswith("latency"))
    assert latency.count("pass ✓✓✓-") == 2
    quiet = next(line for line in text.splitlines() if line.startswith("quiet-day"))
    assert quiet.count("FAIL --✓✗") == 2
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert total.count("1/2 pass") == 2


def test_compare_needs_two_readable_reports(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"runs": 3}')
    with pytest.raises(SystemExit, match="give two reports"):
        run_eval(options("compare", str(tmp_path / "x.json")), io.StringIO())
    with pytest.raises(SystemExit, match="is not a persai eval report"):
        run_eval(options("compare", str(tmp_path / "x.json"), "y.json"), io.StringIO())
    with pytest.raises(SystemExit, match="cannot read"):
        run_eval(options("compare", "nope.json", "y.json"), io.StringIO())


def test_data_end_defaults_to_the_last_whole_minute(tmp_path: Path) -> None:
    out = io.StringIO()
    run_eval(options("--write-data", str(tmp_path / "d.om"), "--only", "quiet-day"), out)
    end = re.search(r"--end (\S+)", out.getvalue())
    assert end is not None
    moment = datetime.fromisoformat(end.group(1))
    assert moment.second == 0
    assert moment < datetime.now(UTC)
