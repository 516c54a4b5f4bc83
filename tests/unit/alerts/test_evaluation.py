"""`persai eval --alert`: each case is asked as the alert its incident would fire, and scored
as before."""

from __future__ import annotations

import io
import json

import httpx

from persai.alerts.evaluation import as_alert
from persai.eval import load_suite, prepare, run_eval
from tests.support.eval_api import END, FakePersAI, good_answer, options


def test_the_alert_question_names_the_rule_its_start_and_the_cluster() -> None:
    (case,) = prepare(load_suite().select(["latency"]), end=END)
    asked = as_alert(case).question
    truth = case.incident.truth
    assert asked.startswith('Alert "LatencySpike" is firing')
    assert json.dumps(truth.query) in asked  # the rule's expression, quoted
    assert truth.window_start is not None
    assert truth.window_start.strftime("%Y-%m-%dT%H:%M:%SZ") in asked
    assert f'"cluster": "{case.scenario.cluster}"' in asked
    assert asked.endswith(case.question.rsplit("\n\n", 1)[-1])  # the suite's scope, as before
    culprit = truth.culprit_value
    assert culprit is not None
    assert culprit not in asked.replace(truth.query, "")  # the alert does not give it away


def test_eval_alert_asks_the_alert_questions_and_scores_them() -> None:
    fake = FakePersAI(lambda _: good_answer({"question": "latency"}), polls=1)
    argv = ["--only", "latency", "--end", "2026-11-24T14:00:00Z", "--url", "http://persai"]
    code = run_eval(options(*argv, "--alert"), io.StringIO(), transport=httpx.MockTransport(fake))
    assert code == 0
    (body,) = fake.bodies
    assert body["question"].startswith('Alert "LatencySpike" is firing')
