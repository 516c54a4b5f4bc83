"""Queue overhead: submit -> `done` through PersAI's own path, against a bare Celery no-op.

    uv run python bench/queue_overhead.py [--quick] [-n 300] [--no-llama-stack]

PersAI's path: `POST /api/v1/investigations` to a real API process (authentication on, auth
cache warm, against the Perses stand-in), Redis, Celery, a real worker process whose model step
is answered at once inside it (no tools), and the events read back over SSE until `done`. The
baseline, on the same redis-server and in the same run, interleaved sample by sample: a Celery
task that returns at once, with a Redis result backend, `.get()`. Target: p50 and p99 at most
2x the baseline's.

Second figure: the same path with the model step through a real Llama Stack server in front of
the scripted OpenAI-compatible model (tests/support/scripted_model.py): what Llama Stack adds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import httpx
import redis

from bench.harness.noop_celery import NOOP, noop_celery
from bench.harness.processes import Cluster, wait_for_workers
from bench.harness.report import Report, arguments, percentile, ratio, summary_ms, verdict
from bench.harness.stack import DATASOURCE, Perses, persai_env, scripted_worker
from persai.agent.scripted import Script
from persai.config import Settings
from persai.jobs import keys
from persai.launcher import Child

TARGET = 2.0
LLAMA_MODEL = "llm/scripted"  # the scripted model as Llama Stack names it (provider `llm`)
SCENARIO = "bench"

Samples = dict[str, list[float]]
StreamReply = list[tuple[str, list[tuple[str, dict[str, str]]]]]


class Driver:
    """The client side: submits and waits, one thing at a time, and times it (seconds)."""

    def __init__(self, redis_url: str, question: str) -> None:
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.celery = noop_celery(redis_url)
        self.body = {"question": question, "datasource": DATASOURCE}
        self.posts: list[float] = []
        """Seconds to the 202 of each submission read back over SSE."""

    def noop(self) -> float:
        began = time.perf_counter()
        self.celery.send_task(NOOP).get(timeout=30)
        return time.perf_counter() - began

    def sse(self, http: httpx.Client) -> float:
        """POST, then the job's `/events` over SSE until `done`."""
        began = time.perf_counter()
        accepted = http.post("/api/v1/investigations", json=self.body)
        accepted.raise_for_status()
        self.posts.append(time.perf_counter() - began)
        done = 0.0
        with http.stream("GET", accepted.json()["links"]["events"]) as stream:
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif event == "done" and line.startswith("data: "):
                    done = time.perf_counter() - began
                    _expect_succeeded(line.removeprefix("data: "))
        return done

    def xread(self, http: httpx.Client) -> float:
        """POST, then the job's Redis Stream (XREAD BLOCK) until `done`: the path without SSE."""
        began = time.perf_counter()
        accepted = http.post("/api/v1/investigations", json=self.body)
        accepted.raise_for_status()
        key, after = keys.events(accepted.json()["id"]), "0"
        while True:
            reply = cast(StreamReply, self.redis.xread({key: after}, block=4000))
            if not reply:
                raise TimeoutError("no event in 4 s")
            for entry_id, fields in reply[0][1]:
                after = entry_id
                if fields["event"] == "done":
                    elapsed = time.perf_counter() - began
                    _expect_succeeded(fields["data"])
                    return elapsed


def _expect_succeeded(data: str) -> None:
    status = json.loads(data)["status"]
    if status != "succeeded":
        raise RuntimeError(f"an investigation ended {status}; see the worker's log")


def interleave(rounds: int, warmup: int, steps: dict[str, Callable[[], float]]) -> Samples:
    """Each step once per round, in turn, so that all of them see the same noise."""
    samples: Samples = {name: [] for name in steps}
    for index in range(warmup + rounds):
        for name, step in steps.items():
            seconds = step()
            if index >= warmup:
                samples[name].append(seconds)
    return samples


def compare(report: Report, label: str, measured: list[float], baseline: list[float]) -> None:
    p50 = ratio(percentile(measured, 50), percentile(baseline, 50))
    p99 = ratio(percentile(measured, 99), percentile(baseline, 99))
    report.figure(label, summary_ms(measured))
    met = verdict(max(p50, p99), TARGET)
    report.figure("  / baseline", f"p50 {p50:.2f}x, p99 {p99:.2f}x: {met}")


@dataclass
class Stack:
    """The API (authentication on) and what its clients and workers need."""

    cluster: Cluster
    api: Child
    env: dict[str, str]
    perses: Perses

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api.url, cookies=self.perses.cookies, timeout=30)


def instant_model(report: Report, stack: Stack, rounds: int, warmup: int) -> None:
    """PersAI with the model answered inside the worker, interleaved with the no-op."""
    cluster, redis_url = stack.cluster, stack.cluster.redis_url
    worker = scripted_worker(cluster, stack.env, Script())
    wait_for_workers(redis_url, [worker])
    driver = Driver(redis_url, "Why is checkout slow?")
    with stack.client() as http:
        steps = {
            "noop": driver.noop,
            "sse": lambda: driver.sse(http),
            "xread": lambda: driver.xread(http),
        }
        samples = interleave(rounds, warmup, steps)
    cluster.stop(worker)  # the Llama Stack worker takes the queue alone
    baseline = samples["noop"]
    report.figure("baseline: Celery no-op round trip, Redis result backend", summary_ms(baseline))
    compare(report, "PersAI submit -> done (auth on, events over SSE)", samples["sse"], baseline)
    report.figure("  of which POST -> 202", summary_ms(driver.posts[warmup:]))
    report.figure("  same, events by XREAD instead of SSE", summary_ms(samples["xread"]))
    calls = stack.perses.calls()
    report.figure("  Perses calls", f"{calls['refresh']} refresh (the first request; cached after)")


def through_llama_stack(report: Report, stack: Stack, rounds: int, warmup: int) -> None:
    """The same path with the model step through Llama Stack and the scripted model."""
    from tests.support.llama_stack import missing_requirements, start_llama_stack

    if missing := missing_requirements():
        report.note(f"Llama Stack figure skipped: missing {', '.join(missing)}")
        return
    cluster, redis_url = stack.cluster, stack.cluster.redis_url
    scenarios = cluster.directory / "scenarios.json"
    scenarios.write_text(json.dumps({SCENARIO: [{"text": "Checkout is slow because of x."}]}))
    model = cluster.server_module(
        "scripted-model", "tests.support.scripted_model", ["--scenario-file", str(scenarios)]
    )
    stack_dir = cluster.directory / "llama-stack"
    stack_dir.mkdir()
    settings = Settings(llm_base_url=f"{model.url}/v1", stack_state_dir=stack_dir)
    llama = start_llama_stack(settings, stack_dir)
    try:
        env = {**stack.env, "PERSAI_LLAMA_STACK_URL": llama.url}
        worker = cluster.module("worker-llama", "persai.cli", ["worker"], env)
        wait_for_workers(redis_url, [worker])
        driver = Driver(redis_url, f"[scenario:{SCENARIO}] Why is checkout slow?")
        with stack.client() as http:
            steps = {"noop": driver.noop, "stack": lambda: driver.sse(http)}
            samples = interleave(rounds, warmup, steps)
    finally:
        llama.stop()
    report.figure("baseline, again (interleaved with this part)", summary_ms(samples["noop"]))
    label = "PersAI + Llama Stack + scripted model (auth on, SSE)"
    compare(report, label, samples["stack"], samples["noop"])


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("-n", type=int, default=None, help="samples of each (300)")
    parser.add_argument("--no-llama-stack", action="store_true", help="skip the second figure")
    args = parser.parse_args()
    rounds = args.n or (10 if args.quick else 300)
    warmup = 5 if args.quick else 20
    report = Report("queue overhead: submit -> done, against a Celery no-op", quick=args.quick)
    with Cluster(keep_logs=args.keep_logs) as cluster:
        redis_url = cluster.redis()
        cluster.module("noop-worker", "bench.harness.noop_celery", ["--redis-url", redis_url])
        perses = Perses.start()
        try:
            # The model id is the one Llama Stack serves; the instant model ignores it.
            env = persai_env(redis_url, model=LLAMA_MODEL, **perses.env())
            stack = Stack(cluster, cluster.api(env), env, perses)
            instant_model(report, stack, rounds, warmup)
            if not args.no_llama_stack:
                through_llama_stack(report, stack, rounds, warmup)
        finally:
            perses.stop()


if __name__ == "__main__":
    main()
