"""Alerts in, findings out, with the real components: a Prometheus rule fires on backfilled
incident data, a real Alertmanager (0.25) posts the group to PersAI's webhook with its bearer
credential, the investigation runs on the scripted model, and its notification reaches an HTTP
receiver with a valid signature. Then the duplicate and outage cases: one group posted to two
API processes at once, a receiver down for a while, a worker killed during a delivery.

Every server is shared by the module's tests; each test uses its own alert group.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from persai.incidents import IncidentParams, generate_all, to_openmetrics
from tests.support.alertmanager import AlertmanagerServer, NotificationReceiver
from tests.support.llama_stack import LlamaStack
from tests.support.persai import MODEL, PersAIProcess, wait_for_job, wait_for_worker
from tests.support.ports import free_port
from tests.support.prometheus import PrometheusServer
from tests.support.redis import RedisServer
from tests.support.scripted_model import ScriptedModel

TOKEN = "alertmanager-bearer-credential-0123"
SECRET = "hook-signing-secret-0123456789"
URL = "/api/v1/alerts/alertmanager"
SELECTED = 'scenario="error_burst", service="storefront", code=~"5.."'
QUERY = f"sum by (endpoint) (rate(http_requests_total{{{SELECTED}}}[5m]))"
RULES = f"""
groups:
  - name: storefront
    rules:
      - alert: StorefrontErrorBurst
        expr: topk(1, max_over_time(({QUERY})[3h:1m]))
        labels: {{severity: page}}
        annotations:
          summary: "storefront 5xx burst on {{{{ $labels.endpoint }}}}"
          description: "An endpoint's 5xx rate burst."
"""
TEMPLATE = (
    "[scenario:alert-triage] Alert {alertname} is {status}, started {starts_at}. "
    "Labels: {labels}. Summary: {summary}. Rule: {expr}. Alerts:\\n{alerts}"
)


@dataclass
class AlertStack:
    apis: list[PersAIProcess]
    workers: list[PersAIProcess]
    env: dict[str, str]
    directory: Path
    receiver: NotificationReceiver

    def client(self, index: int = 0, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.apis[index].url, timeout=30, headers=headers)

    def start_worker(self) -> PersAIProcess:
        log = self.directory / f"worker{len(self.workers)}.log"
        worker = PersAIProcess("worker", self.env, log)
        self.workers.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(p.log()[-3000:] for p in [*self.apis, *self.workers])


@pytest.fixture(scope="module")
def alert_stack(
    tmp_path_factory: pytest.TempPathFactory, stack: LlamaStack, scripted_model: ScriptedModel
) -> Iterator[AlertStack]:
    directory = tmp_path_factory.mktemp("alerts")
    scripted_model.add_scenario(
        "alert-triage",
        [
            {
                "tool_calls": [
                    {
                        "name": "execute_range_query",
                        "arguments": {"query": QUERY, "start": "now-3h"},
                    }
                ]
            },
            {"text": "The 5xx burst is on endpoint {match}.", "match": r'endpoint="([^"]+)"'},
        ],
    )
    incident = generate_all(IncidentParams(seed=7), names=["error_burst"])
    redis = RedisServer(directory / "redis").start()
    receiver = NotificationReceiver(SECRET).start()
    prometheus = None
    alertmanager = None
    running = AlertStack([], [], {}, directory, receiver)
    try:
        # Prometheus → Alertmanager → PersAI → Prometheus: Alertmanager's port is chosen first
        alertmanager_port = free_port()
        prometheus = PrometheusServer.start(
            directory / "prometheus",
            openmetrics=to_openmetrics(incident),
            rule_files={"rules.yml": RULES},
            alertmanagers=[f"127.0.0.1:{alertmanager_port}"],
        )
        (directory / "token").write_text(TOKEN)
        (directory / "alerts.yaml").write_text(
            f"""
public_url: https://persai.example.com
receivers:
  - name: persai
    token_file: {directory / "token"}
    datasource: /proxy/globaldatasources/prom
    question_template: "{TEMPLATE}"
    destinations:
      - {{name: hook, kind: webhook, url: "{receiver.url}/hook", secret_env: TEST_HOOK_SECRET}}
      - {{name: chat, kind: slack, url_env: TEST_SLACK_URL}}
"""
        )
        running.env = {
            "PERSAI_REDIS_URL": redis.url,
            "PERSAI_LLAMA_STACK_URL": stack.url,
            "PERSAI_MODEL": MODEL,
            "PERSAI_AUTH": "false",
            "PERSAI_DATASOURCES": f"prom={prometheus.url}",
            "PERSAI_WORKER_METRICS_PORT": "0",
            "PERSAI_ALERTS_CONFIG": str(directory / "alerts.yaml"),
            "PERSAI_ALERTS_NOTIFY_BACKOFF_S": "0.2",
            "PERSAI_ALERTS_NOTIFY_BACKOFF_MAX_S": "1",
            "PERSAI_ALERTS_NOTIFY_TIMEOUT_S": "2",
            "TEST_HOOK_SECRET": SECRET,
            "TEST_SLACK_URL": f"{receiver.url}/slack",
        }
        for name in ("api-a", "api-b"):
            running.apis.append(PersAIProcess("api", running.env, directory / f"{name}.log"))
        running.start_worker()
        for api in running.apis:
            api.wait_ready()
        wait_for_worker(running.apis[0].url, timeout_s=60)
        # the real path: Prometheus's rule → Alertmanager → PersAI (api-a) with the credential
        alertmanager = AlertmanagerServer.start(
            directory / "alertmanager",
            port=alertmanager_port,
            config={
                "route": {
                    "receiver": "persai",
                    "group_by": ["alertname"],
                    "group_wait": "1s",
                    "group_interval": "2s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "persai",
                        "webhook_configs": [
                            {
                                "url": f"{running.apis[0].url}{URL}",
                                "send_resolved": True,
                                "http_config": {
                                    "authorization": {"type": "Bearer", "credentials": TOKEN}
                                },
                            }
                        ],
                    }
                ],
            },
        )
        yield running
    finally:
        for process in [*running.workers, *running.apis]:
            process.stop()
        for server in (alertmanager, prometheus):
            if server is not None:
                server.stop()
        receiver.stop()
        redis.stop()


def _wait(condition: Callable[[], Any], what: str, stack: AlertStack, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen in {timeout_s} s\n{stack.logs()}")


def _for_job(stack: AlertStack, job_id: str, path: str = "/hook") -> list[dict[str, Any]]:
    return [
        b for b in stack.receiver.bodies(path) if b.get("investigation", {}).get("id") == job_id
    ]


def _payload(group: str, fingerprint: str) -> dict[str, Any]:
    started = (datetime.now(UTC) - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    labels = {"alertname": "SyntheticErrors", "group": group}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{group="{group}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "persai",
        "groupLabels": {"group": group},
        "commonLabels": labels,
        "commonAnnotations": {"summary": "synthetic"},
        "externalURL": "http://alertmanager.invalid",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {},
                "startsAt": started,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.invalid/graph?g0.expr=up+%3D%3D+0&g0.tab=1",
                "fingerprint": fingerprint,
            }
        ],
    }


def _post(stack: AlertStack, index: int, body: dict[str, Any]) -> dict[str, Any]:
    with stack.client(index, Authorization=f"Bearer {TOKEN}") as client:
        answer = client.post(URL, json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_a_firing_rule_is_investigated_and_its_signed_findings_arrive(
    alert_stack: AlertStack,
) -> None:
    def arrived() -> list[dict[str, Any]]:
        return [
            b
            for b in alert_stack.receiver.bodies()
            if (b.get("alert") or {}).get("alertname") == "StorefrontErrorBurst"
        ]

    (body, *_) = _wait(arrived, "the notification of the fired rule", alert_stack, timeout_s=90)
    (request,) = [r for r in alert_stack.receiver.received if r.body is body]
    assert request.signed
    investigation = body["investigation"]
    assert investigation["status"] == "succeeded", alert_stack.logs()
    assert investigation["summary"].startswith("The 5xx burst is on endpoint ")
    (evidence,) = investigation["evidence"]
    assert (evidence["query"], evidence["kind"]) == (QUERY, "range")
    assert evidence["findings"], evidence  # the analysis found the burst
    assert investigation["link"].endswith(investigation["id"])
    slack = _wait(lambda: _for_slack(alert_stack, "StorefrontErrorBurst"), "slack", alert_stack)
    assert slack[0]["blocks"][0]["text"]["text"] == "StorefrontErrorBurst (firing): investigated"

    def recorded() -> dict[str, Any] | None:
        with alert_stack.client() as client:
            job = client.get(f"/api/v1/investigations/{investigation['id']}").json()
        return job if len(job["alert"]["notifications"]) == 2 else None  # recorded after

    job = _wait(recorded, "both attempts recorded", alert_stack)
    assert job["source"] == "alert"
    assert "topk(1, max_over_time(" in job["question"]  # the rule's expr, from generatorURL
    assert job["time_range"]["start"] < job["alert"]["starts_at"]
    assert [n["outcome"] for n in job["alert"]["notifications"]] == ["delivered"] * 2
    with alert_stack.client() as anonymous:  # no credential, or a wrong one: 401
        assert anonymous.post(URL, json=_payload("x", "ab")).status_code == 401


def _for_slack(stack: AlertStack, alertname: str) -> list[dict[str, Any]]:
    return [b for b in stack.receiver.bodies("/slack") if alertname in b.get("text", "")]


def test_one_group_posted_at_once_to_two_api_processes_is_one_investigation(
    alert_stack: AlertStack,
) -> None:
    body = _payload(f"dup-{uuid.uuid4().hex[:6]}", "d1")
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: _post(alert_stack, i % 2, body), range(4)))
    assert len({a["investigations"][0] for a in answers}) == 1
    assert sorted(a["decision"] for a in answers) == ["new", "same", "same", "same"]
    with alert_stack.client() as client:
        job = wait_for_job(client, answers[0]["investigations"][0], timeout_s=60)
    assert job["status"] == "succeeded", alert_stack.logs()


def test_a_receiver_down_for_a_while_still_gets_the_notification(
    alert_stack: AlertStack,
) -> None:
    answer = _post(alert_stack, 1, _payload(f"outage-{uuid.uuid4().hex[:6]}", "e1"))
    job_id = answer["investigations"][0]
    alert_stack.receiver.fail[job_id] = 3  # its first three deliveries (either destination)

    def outcomes() -> list[str]:
        with alert_stack.client() as client:
            job = client.get(f"/api/v1/investigations/{job_id}").json()
        return [n["outcome"] for n in job["alert"]["notifications"]]

    # both destinations delivered (each attempt is recorded after its answer came)
    _wait(lambda: outcomes().count("delivered") == 2, "the delivery after the outage", alert_stack)
    assert outcomes().count("failed: HTTP 503") == 3
    assert _for_job(alert_stack, job_id)[0]["investigation"]["status"] == "succeeded"


def test_a_worker_killed_during_a_delivery_loses_nothing(alert_stack: AlertStack) -> None:
    receiver = alert_stack.receiver
    receiver.held.clear()
    receiver.release.clear()
    answer = _post(alert_stack, 0, _payload(f"kill-{uuid.uuid4().hex[:6]}", "f1"))
    job_id = answer["investigations"][0]
    receiver.hold_for = job_id  # its first delivery waits until the worker is killed
    _wait(receiver.held.is_set, "a delivery in flight", alert_stack)
    worker = alert_stack.workers[-1]  # the only one: the delivery in flight is its
    alert_stack.start_worker()  # it starts while the dead worker's lease runs out
    worker.signal(signal.SIGKILL)
    worker.process.wait()
    receiver.release.set()  # its answer goes to a dead worker

    def recorded() -> list[dict[str, Any]]:
        with alert_stack.client() as client:
            job = client.get(f"/api/v1/investigations/{job_id}").json()
        return [n for n in job["alert"]["notifications"] if n["destination"] == "hook"]

    (hook_attempt,) = _wait(recorded, "the delivery after the kill", alert_stack)
    _wait(lambda: _slack_for_job(alert_stack, job_id), "the slack delivery", alert_stack)
    hooks = [r for r in receiver.received if r.path == "/hook" and job_id in str(r.body)]
    # at least once: the dead worker's attempt (never settled) was made again after its lease,
    # by the new worker, with the same delivery id; no third one
    assert (hook_attempt["attempt"], hook_attempt["outcome"]) == (2, "delivered")
    assert len(hooks) == 2
    assert len({r.delivery for r in hooks}) == 1
    assert all(r.signed for r in hooks)


def _slack_for_job(stack: AlertStack, job_id: str) -> bool:
    return any(job_id in str(b) for b in stack.receiver.bodies("/slack"))
