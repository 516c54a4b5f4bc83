"""Auth polling: authenticated `GET /api/v1/investigations/{id}` with a warm auth cache, in
requests/s, against the unauthenticated `/healthz` of the same API process, same load.

    uv run python bench/auth_polling.py [--quick] [--duration 5] [--connections 16]
                                        [--loadgen auto|python|wrk]

Authentication is on against the Perses stand-in (tests/support/perses.py). The polling client
is a browser (the three Perses cookies); a bearer client (`whoami`) is measured too. The
endpoints are loaded in turn, several rounds, by the same closed-loop generator (`wrk` when it
is installed, else bench/harness/loadgen.py). Target: the cookie poll at least 0.5x the
health endpoint's requests/s, and at most one Perses call per user per cache period (the
stand-in counts them).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics

import httpx
import redis

from bench.harness.loadgen import Load, run_load
from bench.harness.processes import Cluster, wait_for_workers
from bench.harness.report import Report, arguments, ratio, verdict
from bench.harness.stack import Perses, persai_env, scripted_worker, submit_many, wait_finished
from persai.agent.scripted import Script

TARGET = 0.5


def finished_job(cluster: Cluster, env: dict[str, str], api_url: str, perses: Perses) -> str:
    """One investigation, run to its end by a worker (a realistic record to poll)."""
    worker = scripted_worker(cluster, env, Script(tool_calls=()))
    wait_for_workers(cluster.redis_url, [worker])
    (submitted,) = asyncio.run(
        submit_many(api_url, 1, "Why is checkout slow?", cookies=perses.cookies)
    )
    client = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    wait_finished(client, [submitted.job_id], 30)
    client.close()
    cluster.stop(worker)
    return submitted.job_id


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--duration", type=float, default=None, help="seconds per load (5)")
    parser.add_argument("--rounds", type=int, default=None, help="loads of each endpoint (3)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--loadgen", choices=["auto", "python", "wrk"], default="auto")
    args = parser.parse_args()
    duration = args.duration or (1.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 3)
    tool = args.loadgen if args.loadgen != "auto" else ("wrk" if shutil.which("wrk") else "python")
    report = Report("auth polling: GET an investigation with a warm auth cache", quick=args.quick)

    with Cluster(keep_logs=args.keep_logs) as cluster:
        redis_url = cluster.redis()
        perses = Perses.start()
        try:
            env = persai_env(redis_url, **perses.env())
            api = cluster.api(env)
            job_id = finished_job(cluster, env, api.url, perses)
            poll = f"{api.url}/api/v1/investigations/{job_id}"
            cookie = "; ".join(f"{name}={value}" for name, value in perses.cookies.items())
            targets = {
                "healthz": (f"{api.url}/healthz", {}),
                "cookies": (poll, {"Cookie": cookie}),
                "bearer": (poll, {"Authorization": f"Bearer {perses.bearer}"}),
            }
            for url, headers in targets.values():  # warm: caches, connections
                httpx.get(url, headers=headers).raise_for_status()
            before = perses.calls()
            loads: dict[str, list[Load]] = {name: [] for name in targets}
            for _ in range(rounds):
                for name, (url, headers) in targets.items():
                    loads[name].append(
                        run_load(
                            url,
                            headers=headers,
                            connections=args.connections,
                            duration_s=duration,
                            tool=tool,
                        )
                    )
            after = perses.calls()
        finally:
            perses.stop()

    report.figure(
        "load",
        f"{tool}, {args.connections} connections, {rounds} x {duration:g} s per endpoint, "
        "endpoints in turn",
    )
    rps = {name: statistics.median(load.rps for load in runs) for name, runs in loads.items()}
    labels = {
        "healthz": "GET /healthz (no auth)",
        "cookies": "GET /api/v1/investigations/{id}, Perses cookies",
        "bearer": "GET /api/v1/investigations/{id}, bearer token",
    }
    for name, runs in loads.items():
        errors = sum(load.errors for load in runs)
        report.figure(
            labels[name],
            f"{rps[name]:.0f} req/s (median of {len(runs)}), "
            f"p50 {statistics.median(r.p50_ms for r in runs):.2f} ms, "
            f"p99 {statistics.median(r.p99_ms for r in runs):.2f} ms, errors {errors}",
        )
    cookies_ratio = ratio(rps["cookies"], rps["healthz"])
    met = verdict(cookies_ratio, TARGET, at_most=False)
    report.figure("cookies / healthz", f"{cookies_ratio:.2f}x, {met}")
    report.figure("bearer / healthz", f"{ratio(rps['bearer'], rps['healthz']):.2f}x")
    polls = sum(load.requests for name in ("cookies", "bearer") for load in loads[name])
    during = {name: after[name] - before[name] for name in after}
    report.figure(
        "Perses calls",
        f"{during['refresh']} refresh + {during['whoami']} whoami during {polls} polls; "
        f"{after['refresh']} refresh + {after['whoami']} whoami in all (1 user, 2 tokens)",
    )
    if any(load.errors for runs in loads.values() for load in runs):
        raise SystemExit("some requests failed")


if __name__ == "__main__":
    main()
