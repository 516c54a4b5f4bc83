"""Concurrency: 500 investigations at once on ONE worker process, against the time of one.

    uv run python bench/concurrency.py [--quick] [-n 500] [--batches 3] [--model-delay 2]
                                       [--series 1] [--submit api|direct] [--busy 0.6]

Each investigation makes 3 model calls of 2 s (the model waits 2 s per call inside the worker,
as asyncio) and 3 tool calls (`execute_range_query` against a small Prometheus-compatible HTTP
server: a real local endpoint answering `--series` series of 241 points). They are posted to
the API at once (`api`, the default: the whole path, the API's rate of acceptance included), or
stored as the API stores them and queued to Celery at once (`direct`: the worker alone). A
batch runs from the first submission to the last `done` event (the events' stream ids: Redis's
clock). Target: a batch within 1.5x the time of one investigation alone, on one worker process,
with bounded memory (the worker's peak RSS, VmHWM). The machines these run on are shared and
noisy: several batches run one after the other, and the median counts. `--busy 0.6` keeps
60 % of one core busy throughout (baseline and batches), as other tenants of a shared machine
do: how much margin the target keeps when the machine is slow.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import httpx
import redis

from bench.harness.processes import (
    Cluster,
    CpuMeter,
    peak_rss_mib,
    rss_mib,
    threads,
    wait_for_workers,
)
from bench.harness.report import Report, arguments, percentile, ratio, verdict
from bench.harness.stack import (
    Submitted,
    Timeline,
    create_jobs,
    persai_env,
    publish,
    scripted_worker,
    submit_many,
    timelines,
    wait_finished,
)
from persai.agent.scripted import Script
from persai.launcher import Child

TARGET = 1.5
MODEL_CALLS = 3
TOOL_PLAN = (1, 2)  # tool calls asked by the 1st and 2nd model calls: 3 in all; the 3rd answers
QUESTION = "Why did checkout latency jump?"


@dataclass
class Batch:
    """What happened to a batch submitted at once (seconds)."""

    wall_s: float
    """First submission -> last `done`."""
    submission_s: float
    """First submission -> last one accepted."""
    each_s: list[float]
    """Each investigation's submission -> its `done`."""
    failed: int
    spent: list[Timeline]


class Runner:
    def __init__(self, redis_url: str, api: Child, *, direct: bool, timeout_s: float) -> None:
        self.redis_url = redis_url
        self.api = api
        self.direct = direct
        self.timeout_s = timeout_s
        self.client = redis.Redis.from_url(redis_url, decode_responses=True)

    def submit(self, count: int) -> tuple[float, list[Submitted]]:
        if self.direct:
            job_ids = asyncio.run(create_jobs(self.redis_url, count, QUESTION))
            return time.time(), publish(self.redis_url, job_ids)
        began = time.time()
        return began, asyncio.run(submit_many(self.api.url, count, QUESTION))

    def batch(self, count: int) -> Batch:
        began, submitted = self.submit(count)
        ids = [s.job_id for s in submitted]
        finished = wait_finished(self.client, ids, self.timeout_s, poll_s=0.5)
        return Batch(
            wall_s=max(f.done_at for f in finished.values()) - began,
            submission_s=max(s.accepted_at for s in submitted) - began,
            each_s=[finished[s.job_id].done_at - s.sent_at for s in submitted],
            failed=sum(1 for f in finished.values() if f.status != "succeeded"),
            spent=timelines(self.client, submitted),
        )


def p50_p99(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):.2f} s, p99 {percentile(values, 99):.2f} s"


def print_batch(report: Report, batch: Batch, count: int, single: float, how: str) -> None:
    report.figure(
        f"{count} at once, first submission -> last done",
        f"{batch.wall_s:.2f} s (submitting {how} took {batch.submission_s:.2f} s of it)",
    )
    measured = ratio(batch.wall_s, single)
    report.figure("ratio to one alone", f"{measured:.2f}x, {verdict(measured, TARGET)}")
    p99 = ratio(percentile(batch.each_s, 99), single)
    report.figure(
        "each investigation, submitted -> done",
        f"{p50_p99(batch.each_s)}, max {max(batch.each_s):.2f} s (p99 / one alone: {p99:.2f}x)",
    )
    spent = batch.spent
    parts = {
        "queued (submitted -> a worker starts it)": [t.queued_s for t in spent],
        "running (started -> finished)": [t.running_s for t in spent],
        "  in model calls": [t.model_s for t in spent],
        "  in tool calls": [t.tools_s for t in spent],
        "  elsewhere (Redis, waiting for the loop)": [
            t.running_s - t.model_s - t.tools_s for t in spent
        ],
    }
    for label, values in parts.items():
        report.figure(f"  {label}", p50_p99(values))
    report.figure("succeeded", f"{count - batch.failed} of {count}")
    report.figure("tool calls that failed", str(sum(t.tool_errors for t in spent)))


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("-n", type=int, default=None, help="investigations at once (500)")
    parser.add_argument("--model-delay", type=float, default=None, help="seconds per model call")
    parser.add_argument("--series", type=int, default=1, help="series per tool answer (1)")
    parser.add_argument("--submit", choices=["api", "direct"], default="api")
    parser.add_argument("--batches", type=int, default=None, help="batches of n, median (3)")
    parser.add_argument("--singles", type=int, default=None, help="lone runs for the baseline (3)")
    parser.add_argument(
        "--busy",
        type=float,
        default=0.0,
        help="keep this share of one core busy throughout, as a busy shared machine does (0)",
    )
    args = parser.parse_args()
    count = args.n or (30 if args.quick else 500)
    delay = args.model_delay if args.model_delay is not None else (0.2 if args.quick else 2.0)
    singles = args.singles or (1 if args.quick else 3)
    batches = args.batches or (1 if args.quick else 3)
    concurrency = max(count, 500)
    report = Report(
        f"concurrency: {count} investigations at once on one worker process", quick=args.quick
    )
    report.figure(
        "workload",
        f"{MODEL_CALLS} model calls of {delay:g} s and {sum(TOOL_PLAN)} tool calls each (answers "
        f"of {args.series} series x 241 points); worker concurrency {concurrency}",
    )
    script = Script(model_delay_s=delay, tool_calls=TOOL_PLAN)
    if args.busy:
        report.figure("machine kept busy", f"{args.busy:.0%} of one core, throughout (--busy)")
    with Cluster(keep_logs=args.keep_logs) as cluster:
        if args.busy:
            cluster.module("busy", "bench.harness.busy", ["--share", str(args.busy)])
        redis_url = cluster.redis()
        prometheus = cluster.server_module(
            "prometheus", "bench.harness.stub_prometheus", ["--series", str(args.series)]
        )
        env = persai_env(redis_url, datasource_url=prometheus.url)
        api = cluster.api(env)
        worker = scripted_worker(cluster, env, script, concurrency=concurrency)
        wait_for_workers(redis_url, [worker])
        runner = Runner(redis_url, api, direct=args.submit == "direct", timeout_s=60 + count)

        runner.batch(1)  # warm-up: first connections, imports
        single = statistics.median(runner.batch(1).wall_s for _ in range(singles))
        rss_before = rss_mib(worker.pid)
        measured: list[tuple[Batch, str]] = []
        for _ in range(batches):
            meter = CpuMeter(cluster.children)
            meter.start()
            batch = runner.batch(count)
            meter.stop()
            measured.append((batch, meter.summary(batch.wall_s)))
        peak, threads_now = peak_rss_mib(worker.pid), threads(worker.pid)
        queries = httpx.get(f"{prometheus.url}/bench/requests").json()["query_range"]

    report.figure(
        "one investigation alone",
        f"median {single:.2f} s of {singles} (its model calls alone: {MODEL_CALLS * delay:.2f} s)",
    )
    how = "straight to Celery" if runner.direct else "through the API"
    by_time = sorted(measured, key=lambda m: m[0].wall_s)
    batch, cpu = by_time[len(by_time) // 2]
    each = ", ".join(f"{ratio(b.wall_s, single):.2f}x" for b, _ in measured)
    report.figure("each batch, ratio to one alone", f"{each} (in the order run)")
    report.figure("the median batch", "as follows")
    print_batch(report, batch, count, single, how)
    expected = (count * batches + singles + 1) * sum(TOOL_PLAN)
    report.figure("tool calls the Prometheus stand-in answered", f"{queries} of {expected}")
    report.figure(
        "worker memory",
        f"peak RSS (VmHWM) {peak:.0f} MiB; {rss_before:.0f} MiB before the batch; "
        f"{threads_now} threads",
    )
    report.figure("CPU used during the batch", cpu)
    failed = sum(b.failed for b, _ in measured)
    if failed:
        raise SystemExit(f"{failed} investigations did not succeed")
    tool_errors = sum(t.tool_errors for b, _ in measured for t in b.spent)
    if tool_errors:  # the workload did not run as described: its figures measure something else
        raise SystemExit(f"{tool_errors} tool calls failed")


if __name__ == "__main__":
    main()
