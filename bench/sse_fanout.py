"""SSE fan-out: 1,000 subscribers to one investigation's `/events` (or 10,000 over 1,000 of
them), each receiving every event in order; the delivery lag from the worker emitting an event
to each subscriber reading it, and the Redis connections the API holds meanwhile.

    uv run python bench/sse_fanout.py [--quick] [--subscribers 1000] [--jobs 1] [--deltas 20]
    uv run python bench/sse_fanout.py --subscribers 10000 --jobs 1000 --deltas 5 --wave 500

One API process (authentication off), one worker. The subscribers (spread evenly over the
jobs) connect while the jobs wait in the queue (each gets the history first); then the worker
starts and its model streams each answer in `--deltas` pieces, 100 ms apart, each carrying the
wall-clock time the worker handed it over (`t=<unix seconds>;`). Lag = time read by the
subscriber - that time. Every subscriber's sequence of event ids is checked against its job's
Redis Stream (nothing lost, repeated or out of order). The API's TCP connections to Redis are
counted (from /proc) once every subscriber is connected. The subscribers run in this process
(asyncio), on the same cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import redis

from bench.harness.processes import Cluster, CpuMeter, more_open_files, wait_for_workers
from bench.harness.report import Report, arguments, percentile
from bench.harness.sse import Received, subscribe
from bench.harness.stack import entry_time, events_key, persai_env, scripted_worker, submit_many
from persai.agent.scripted import STAMP_PREFIX, Script

DELTA_INTERVAL_S = 0.1
CONNECT_TIMEOUT_S = 120.0


@dataclass
class Subscribers:
    tasks: dict[int, asyncio.Task[list[Received]]]
    """The connected ones, by number (subscriber n follows path n % len(paths))."""
    connect_s: float
    """Seconds until every subscriber was connected or refused."""
    refused: Counter[str]
    """Why subscribers were refused (`HTTP 503`...), how many each."""


async def fan_out(api_url: str, paths: list[str], count: int, wave: int) -> Subscribers:
    """Connect `count` subscribers, spread over `paths` in turn, `wave` at a time (each wave
    connected before the next)."""
    parts = urlsplit(api_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    began = time.perf_counter()
    tasks: list[asyncio.Task[list[Received]]] = []
    for first in range(0, count, wave):
        flags = [asyncio.Event() for _ in range(first, min(count, first + wave))]
        started = [
            asyncio.create_task(subscribe(host, port, paths[(first + n) % len(paths)], flag))
            for n, flag in enumerate(flags)
        ]
        tasks += started
        deadline = time.perf_counter() + CONNECT_TIMEOUT_S
        while not all(f.is_set() or t.done() for f, t in zip(flags, started, strict=True)):
            if time.perf_counter() > deadline:
                raise TimeoutError(f"subscribers not connected after {CONNECT_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.02)
    connect_s = time.perf_counter() - began
    refused = Counter(str(t.exception()) for t in tasks if t.done() and t.exception())
    live = {n: t for n, t in enumerate(tasks) if not t.done()}
    return Subscribers(live, connect_s, refused)


def stamp(event: Received) -> float | None:
    """The worker's hand-over time carried by a stamped answer piece."""
    if event.event != "message_delta" or STAMP_PREFIX not in event.data:
        return None
    text = event.data.split(STAMP_PREFIX, 1)[1]
    return float(text.split(";", 1)[0])


def lag_ms(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50) * 1000:.1f} ms, p99 {percentile(values, 99) * 1000:.1f} ms, "
        f"max {max(values, default=0) * 1000:.1f} ms (n={len(values)})"
    )


def api_redis_connections(api_pid: int, redis_port: int) -> int:
    """The TCP connections the process `api_pid` holds to the Redis on `redis_port` (/proc)."""
    inodes = set()
    for fd in Path(f"/proc/{api_pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    held = 0
    for line in Path(f"/proc/{api_pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].rsplit(":", 1)[1], 16)
        if remote_port == redis_port and fields[3] == "01" and fields[9] in inodes:
            held += 1  # 01: ESTABLISHED
    return held


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--subscribers", type=int, default=None, help="(1000)")
    parser.add_argument("--jobs", type=int, default=1, help="investigations followed (1)")
    parser.add_argument("--deltas", type=int, default=None, help="answer pieces (20)")
    parser.add_argument(
        "--wave", type=int, default=None, help="subscribers connecting at once (all)"
    )
    args = parser.parse_args()
    count = args.subscribers or (50 if args.quick else 1000)
    deltas = args.deltas or (5 if args.quick else 20)
    wave = args.wave or count
    jobs = args.jobs
    title = f"SSE fan-out: {count} subscribers to {jobs} investigation{'s' if jobs > 1 else ''}"
    report = Report(title, quick=args.quick)
    script = Script(answer_deltas=deltas, delta_interval_s=DELTA_INTERVAL_S, stamp_deltas=True)

    with more_open_files(4 * count + 1024), Cluster(keep_logs=args.keep_logs) as cluster:
        redis_url = cluster.redis()
        env = persai_env(redis_url)
        api = cluster.api(env)
        submitted = asyncio.run(submit_many(api.url, jobs, "Why is checkout slow?"))
        job_ids = [job.job_id for job in submitted]
        paths = [f"/api/v1/investigations/{job_id}/events" for job_id in job_ids]

        async def run() -> tuple[Subscribers, dict[int, list[Received]], CpuMeter, float, int]:
            subscribers = await fan_out(api.url, paths, count, wave)
            held = api_redis_connections(api.pid, urlsplit(redis_url).port or 6379)
            worker = await asyncio.to_thread(
                scripted_worker, cluster, env, script, concurrency=max(200, jobs)
            )
            await asyncio.to_thread(wait_for_workers, redis_url, [worker])
            meter = CpuMeter(cluster.children)
            meter.start()
            began = time.perf_counter()
            streams = await asyncio.gather(*subscribers.tasks.values())
            meter.stop()
            got = dict(zip(subscribers.tasks, streams, strict=True))
            return subscribers, got, meter, time.perf_counter() - began, held

        subscribers, streams, meter, flow_s, held = asyncio.run(run())
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        canonical = [
            [entry_id for entry_id, _ in cast(list[Any], client.xrange(events_key(job_id)))]
            for job_id in job_ids
        ]

    emitted = {entry_id: entry_time(entry_id) for ids in canonical for entry_id in ids}
    complete = sum(
        1 for n, stream in streams.items() if [e.id for e in stream] == canonical[n % jobs]
    )
    stamped = [
        e.at - sent for stream in streams.values() for e in stream if (sent := stamp(e)) is not None
    ]
    live = [e.at - emitted[e.id] for stream in streams.values() for e in stream[1:]]
    refused = sum(subscribers.refused.values())
    report.figure(
        "subscribers connected",
        f"{count - refused} of {count} in {subscribers.connect_s:.2f} s ({wave} at a time)"
        + (f"; refused: {dict(subscribers.refused)}" if refused else ""),
    )
    report.figure("API connections to Redis with every subscriber connected", str(held))
    report.figure("events in the jobs' streams", str(sum(len(ids) for ids in canonical)))
    report.figure(
        "subscribers that received every event, in order, once",
        f"{complete} of {count}" + ("" if complete == count else "  <-- NOT ALL"),
    )
    report.figure(f"delivery lag of the {deltas} stamped answer pieces", lag_ms(stamped))
    report.figure("lag of every live event (from its stream id, 1 ms resolution)", lag_ms(live))
    report.figure("CPU used while the events flowed", meter.summary(flow_s))
    if complete != count:
        raise SystemExit(f"{count - complete} subscribers did not receive every event")


if __name__ == "__main__":
    main()
