"""Auth polling: authenticated `GET /api/v1/investigations/{id}` with a warm auth cache, in
requests/s, against the unauthenticated `/healthz` of the same API process, same load.

    uv run python bench/auth_polling.py [--quick] [--duration 5] [--connections 16]
                                        [--loadgen auto|python|wrk] [--processes 2]

Authentication is on against the Perses stand-in (tests/support/perses.py). The polling client
is a browser (the three Perses cookies); a bearer client (`whoami`) is measured too. The
endpoints are loaded in turn, several rounds, by the same closed-loop generator (`wrk` when it
is installed, else bench/harness/loadgen.py). Target: the cookie poll at least 0.5x the
health endpoint's requests/s, and at most one Perses call per user per cache period (the
stand-in counts them).

`--processes N` then starts a second API, `persai api --workers N` (N processes sharing one
port), on the same Redis, and loads its cookie poll the same way: polls/s against the one
process's. On a 2-core host the load generator, Redis and the API processes share the cores:
read the shape, not the scaling a larger host would show.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys

import httpx
import redis

from bench.harness.loadgen import Load, run_load
from bench.harness.processes import Cluster, wait_for_workers
from bench.harness.report import Report, arguments, ratio, verdict
from bench.harness.stack import Perses, persai_env, scripted_worker, submit_many, wait_finished
from persai.agent.scripted import Script
from persai.launcher import Child, free_port

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


def api_processes(cluster: Cluster, env: dict[str, str], processes: int) -> Child:
    """`persai api --workers N`, once all its processes answer."""
    port = free_port()
    argv = [sys.executable, "-m", "persai.cli", "api", "--port", str(port)]
    argv += ["--workers", str(processes)]
    child = cluster.start(f"api-x{processes}", argv, env, port=port).wait_listening(60)
    for _ in range(20 * processes):  # connections go to every process in turn: warm them all
        httpx.get(f"{child.url}/healthz", timeout=30).raise_for_status()
    return child


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--duration", type=float, default=None, help="seconds per load (5)")
    parser.add_argument("--rounds", type=int, default=None, help="loads of each endpoint (3)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--loadgen", choices=["auto", "python", "wrk"], default="auto")
    parser.add_argument(
        "--processes", type=int, default=0, help="also poll `persai api --workers N` (off)"
    )
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
            several: list[Load] = []
            if args.processes > 1:
                scaled = api_processes(cluster, env, args.processes)
                url = f"{scaled.url}/api/v1/investigations/{job_id}"
                for _ in range(20 * args.processes):
                    httpx.get(url, headers={"Cookie": cookie}).raise_for_status()
                several = [
                    run_load(
                        url,
                        headers={"Cookie": cookie},
                        connections=args.connections,
                        duration_s=duration,
                        tool=tool,
                    )
                    for _ in range(rounds)
                ]
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
    if several:
        scaled_rps = statistics.median(load.rps for load in several)
        report.figure(
            f"GET /api/v1/investigations/{{id}}, cookies, `persai api --workers {args.processes}`",
            f"{scaled_rps:.0f} req/s (median of {len(several)}), "
            f"p99 {statistics.median(r.p99_ms for r in several):.2f} ms, "
            f"errors {sum(load.errors for load in several)}; "
            f"{ratio(scaled_rps, rps['cookies']):.2f}x one process",
        )
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
