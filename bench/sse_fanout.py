"""SSE fan-out: 1,000 subscribers to one investigation's `/events`, each receiving every event in
order; the delivery lag from the worker emitting an event to each subscriber reading it.

    uv run python bench/sse_fanout.py [--quick] [--subscribers 1000] [--deltas 20]

One API process (authentication off), one worker. The subscribers connect while the job waits
in the queue (each gets the history first); then the worker starts and its model streams the
answer in `--deltas` pieces, 100 ms apart, each carrying the wall-clock time the worker handed
it over (`t=<unix seconds>;`). Lag = time read by the subscriber - that time. Every
subscriber's sequence of event ids is checked against the job's Redis Stream (nothing lost,
repeated or out of order). The subscribers run in this process (asyncio), on the same cores.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import cast
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
    tasks: list[asyncio.Task[list[Received]]]
    connect_s: float
    """Seconds until every subscriber was connected or refused."""
    refused: Counter[str]
    """Why subscribers were refused (`HTTP 503`...), how many each."""


async def fan_out(api_url: str, path: str, count: int, wave: int) -> Subscribers:
    """Connect `count` subscribers, `wave` at a time (each wave connected before the next)."""
    parts = urlsplit(api_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    began = time.perf_counter()
    tasks: list[asyncio.Task[list[Received]]] = []
    for first in range(0, count, wave):
        flags = [asyncio.Event() for _ in range(first, min(count, first + wave))]
        started = [asyncio.create_task(subscribe(host, port, path, flag)) for flag in flags]
        tasks += started
        deadline = time.perf_counter() + CONNECT_TIMEOUT_S
        while not all(f.is_set() or t.done() for f, t in zip(flags, started, strict=True)):
            if time.perf_counter() > deadline:
                raise TimeoutError(f"subscribers not connected after {CONNECT_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.02)
    connect_s = time.perf_counter() - began
    refused = Counter(str(t.exception()) for t in tasks if t.done() and t.exception())
    return Subscribers([t for t in tasks if not t.done()], connect_s, refused)


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


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--subscribers", type=int, default=None, help="(1000)")
    parser.add_argument("--deltas", type=int, default=None, help="answer pieces (20)")
    parser.add_argument(
        "--wave", type=int, default=None, help="subscribers connecting at once (all)"
    )
    args = parser.parse_args()
    count = args.subscribers or (50 if args.quick else 1000)
    deltas = args.deltas or (5 if args.quick else 20)
    wave = args.wave or count
    report = Report(f"SSE fan-out: {count} subscribers to one investigation", quick=args.quick)
    script = Script(answer_deltas=deltas, delta_interval_s=DELTA_INTERVAL_S, stamp_deltas=True)

    with more_open_files(4 * count + 1024), Cluster(keep_logs=args.keep_logs) as cluster:
        redis_url = cluster.redis()
        env = persai_env(redis_url)
        api = cluster.api(env)
        (job,) = asyncio.run(submit_many(api.url, 1, "Why is checkout slow?"))
        path = f"/api/v1/investigations/{job.job_id}/events"

        async def run() -> tuple[Subscribers, list[list[Received]], CpuMeter, float]:
            subscribers = await fan_out(api.url, path, count, wave)
            worker = await asyncio.to_thread(scripted_worker, cluster, env, script)
            await asyncio.to_thread(wait_for_workers, redis_url, [worker])
            meter = CpuMeter(cluster.children)
            meter.start()
            began = time.perf_counter()
            streams = await asyncio.gather(*subscribers.tasks)
            meter.stop()
            return subscribers, streams, meter, time.perf_counter() - began

        subscribers, streams, meter, flow_s = asyncio.run(run())
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        entries = cast(list[tuple[str, dict[str, str]]], client.xrange(events_key(job.job_id)))
        canonical = [entry_id for entry_id, _ in entries]

    emitted = {entry_id: entry_time(entry_id) for entry_id in canonical}
    complete = sum(1 for stream in streams if [e.id for e in stream] == canonical)
    stamped = [e.at - sent for stream in streams for e in stream if (sent := stamp(e)) is not None]
    live = [e.at - emitted[e.id] for stream in streams for e in stream[1:]]
    refused = sum(subscribers.refused.values())
    report.figure(
        "subscribers connected",
        f"{count - refused} of {count} in {subscribers.connect_s:.2f} s ({wave} at a time)"
        + (f"; refused: {dict(subscribers.refused)}" if refused else ""),
    )
    report.figure("events in the job's stream", str(len(canonical)))
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
