"""Scale-out: investigations per second through 1, 2 and 4 worker processes.

    uv run python bench/scale_out.py [--quick] [-n 2000] [--workers 1,2,4] [--model-delay 0]

For each number of workers: that many PersAI worker processes (their model answers inside them,
after `--model-delay` seconds; one tool call each against a small Prometheus-compatible server
unless `--no-tools`), `-n` jobs stored as the API stores them, then all queued at once straight
to Celery (the API is not what is measured here). Throughput = jobs / (first queued -> last
`done`). On a 2-core machine the figures show the shape of the curve, not what more cores give:
every worker, Redis and this driver share the same two cores.
"""

from __future__ import annotations

import asyncio
import os

import redis

from bench.harness.processes import Cluster, CpuMeter, wait_for_workers
from bench.harness.report import Report, arguments
from bench.harness.stack import create_jobs, persai_env, publish, scripted_worker, wait_finished
from persai.agent.scripted import Script
from persai.launcher import Child

QUESTION = "Why is checkout slow?"


def throughput(
    cluster: Cluster, workers: list[Child], jobs: int
) -> tuple[float, int, dict[str, float]]:
    """(investigations/s, how many failed, CPU seconds used by each process) through `workers`."""
    redis_url = cluster.redis_url
    wait_for_workers(redis_url, workers)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    warmup = publish(redis_url, asyncio.run(create_jobs(redis_url, 4 * len(workers), QUESTION)))
    wait_finished(client, [s.job_id for s in warmup], 60)
    job_ids = asyncio.run(create_jobs(redis_url, jobs, QUESTION))
    servers = [c for c in cluster.children if c.name in ("redis", "prometheus")]
    meter = CpuMeter([*workers, *servers])
    meter.start()
    submitted = publish(redis_url, job_ids)
    finished = wait_finished(client, job_ids, 60 + jobs, poll_s=0.25)
    meter.stop()
    client.close()
    elapsed = max(f.done_at for f in finished.values()) - submitted[0].sent_at
    failed = sum(1 for f in finished.values() if f.status != "succeeded")
    return jobs / elapsed, failed, meter.used


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("-n", type=int, default=None, help="jobs per run (2000)")
    parser.add_argument("--workers", default=None, help="worker processes per run (1,2,4)")
    parser.add_argument("--model-delay", type=float, default=0.0, help="seconds per model call")
    parser.add_argument("--no-tools", action="store_true", help="answer without a tool call")
    args = parser.parse_args()
    jobs = args.n or (60 if args.quick else 2000)
    counts = [int(n) for n in (args.workers or ("1,2" if args.quick else "1,2,4")).split(",")]
    script = Script(model_delay_s=args.model_delay, tool_calls=() if args.no_tools else (1,))
    report = Report("scale-out: investigations per second by worker processes", quick=args.quick)
    report.figure(
        "workload",
        f"{jobs} jobs queued at once; per job {2 if script.tool_calls else 1} model call(s) of "
        f"{args.model_delay:g} s and {sum(script.tool_calls)} tool call(s); "
        f"{os.cpu_count()} cores shared by everything: read the shape, not the scale",
    )
    rates: dict[int, float] = {}
    failures = 0
    with Cluster(keep_logs=args.keep_logs) as cluster:
        redis_url = cluster.redis()
        prometheus = cluster.server_module("prometheus", "bench.harness.stub_prometheus", [])
        env = persai_env(redis_url, datasource_url=prometheus.url)
        workers: list[Child] = []
        for count in sorted(counts):  # each run adds workers to the last run's
            while len(workers) < count:
                workers.append(scripted_worker(cluster, env, script, name=f"worker{len(workers)}"))
            rate, failed, used = throughput(cluster, workers, jobs)
            rates[count] = rate
            worker_cpu = sum(seconds for name, seconds in used.items() if name.startswith("worker"))
            report.figure(
                f"{count} worker process{'es' if count > 1 else ''}",
                f"{rate:.0f} investigations/s ({rate / rates[min(counts)]:.2f}x); CPU used: "
                f"workers {worker_cpu:.1f} s, redis {used['redis']:.1f} s, "
                f"prometheus {used['prometheus']:.1f} s, this driver {used['driver']:.1f} s; "
                f"failed: {failed}",
            )
            failures += failed
    if failures:
        raise SystemExit(f"{failures} investigations did not succeed (see the runs above)")


if __name__ == "__main__":
    main()
