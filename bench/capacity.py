"""Capacity: bytes of Redis memory per finished investigation and per conversation, so that an
operator can size Redis for the retention they choose.

    uv run python bench/capacity.py [--quick] [-n 200] [--follow-ups 1]

One API process (authentication off) and one worker whose model answers inside it; each
investigation is a typical one: 3 model calls and 3 tool calls (`execute_range_query`
against bench/harness/stub_prometheus.py, 1 series x 241 points), its answer streamed in 20
pieces. `-n` investigations are asked, each in a new conversation, then `--follow-ups`
more in each of those conversations. Measured: `MEMORY USAGE` of every key each job and each
conversation leaves (SAMPLES 0: all of it), and the growth of `used_memory` (INFO memory)
over the whole run, which includes the indexes and Redis's own overhead.
"""

from __future__ import annotations

import asyncio
import json
import statistics

import aiohttp
import redis

from bench.harness.processes import Cluster, wait_for_workers
from bench.harness.report import Report, arguments
from bench.harness.stack import DATASOURCE, persai_env, scripted_worker, submit_many, wait_finished
from persai.agent.scripted import Script
from persai.jobs import keys

TOOL_PLAN = (1, 2)  # tool calls asked by the 1st and 2nd model calls: 3 in all; the 3rd answers


def _usage(client: redis.Redis, names: list[str]) -> int:
    """Bytes of the keys `names` (those that exist), by MEMORY USAGE ... SAMPLES 0."""
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.memory_usage(name, samples=0)
        return sum(int(size or 0) for size in pipe.execute())


async def _follow_ups(api_url: str, conversations: list[str], question: str) -> list[str]:
    async with aiohttp.ClientSession(api_url) as session:

        async def one(conversation_id: str) -> str:
            body = {"question": question, "datasource": DATASOURCE}
            body["conversation_id"] = conversation_id
            async with session.post("/api/v1/investigations", json=body) as response:
                text = await response.text()
                if response.status != 202:
                    raise RuntimeError(f"follow-up refused: {response.status} {text}")
                return str(json.loads(text)["id"])

        return list(await asyncio.gather(*(one(c) for c in conversations)))


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("-n", type=int, default=None, help="investigations (200)")
    parser.add_argument("--follow-ups", type=int, default=1, help="per conversation (1)")
    args = parser.parse_args()
    count = args.n or (20 if args.quick else 200)
    report = Report("capacity: Redis memory per investigation and conversation", quick=args.quick)
    script = Script(tool_calls=TOOL_PLAN, answer_deltas=20)

    with Cluster(keep_logs=args.keep_logs) as cluster:
        redis_url = cluster.redis()
        prometheus = cluster.server_module(
            "prometheus", "bench.harness.stub_prometheus", ["--series", "1"]
        )
        env = persai_env(redis_url, datasource_url=prometheus.url)
        api = cluster.api(env)
        worker = scripted_worker(cluster, env, script)
        wait_for_workers(redis_url, [worker])
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        client.memory_purge()
        before = int(client.info("memory")["used_memory"])

        first = asyncio.run(submit_many(api.url, count, "Why did checkout latency jump?"))
        jobs = [job.job_id for job in first]
        wait_finished(client, jobs, 300)
        conversations = [str(client.hget(keys.job(job), "doc") or "{}") for job in jobs]
        conversation_ids = [json.loads(doc)["conversation_id"] for doc in conversations]
        for _ in range(args.follow_ups):
            later = asyncio.run(_follow_ups(api.url, conversation_ids, "And before that?"))
            wait_finished(client, later, 300)
            jobs += later
        client.memory_purge()
        after = int(client.info("memory")["used_memory"])

        per_job = [
            _usage(client, [keys.job(j), keys.events(j), keys.credentials(j), keys.lease(j)])
            for j in jobs
        ]
        per_conversation = [
            _usage(client, [keys.conversation(c), keys.conversation_messages(c)])
            for c in conversation_ids
        ]
        events = statistics.median(int(client.xlen(keys.events(j))) for j in jobs)
        statuses = {str(client.hget(keys.job(j), "status")) for j in jobs}
        client.close()

    turns = 1 + args.follow_ups
    report.figure(
        "asked",
        f"{len(jobs)} investigations ({count} conversations x {turns} questions), "
        f"3 model + 3 tool calls each, median {events:.0f} events; statuses {sorted(statuses)}",
    )
    report.figure(
        "per finished investigation (its record and event stream)",
        f"median {statistics.median(per_job) / 1024:.1f} KiB, max {max(per_job) / 1024:.1f} KiB",
    )
    report.figure(
        f"per conversation of {turns} questions (its record and history)",
        f"median {statistics.median(per_conversation) / 1024:.1f} KiB, "
        f"max {max(per_conversation) / 1024:.1f} KiB",
    )
    report.figure(
        "used_memory growth over the run / investigations",
        f"{(after - before) / len(jobs) / 1024:.1f} KiB each "
        f"({(after - before) / 1024 / 1024:.1f} MiB for {len(jobs)})",
    )
    if statuses != {"succeeded"}:
        raise SystemExit(f"not all succeeded: {statuses}")


if __name__ == "__main__":
    main()
