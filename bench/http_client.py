"""HTTP client: CPU per tool request with aiohttp (what the worker's tools use) against httpx.

    uv run python bench/http_client.py [--quick] [-n 2000] [--in-flight 32]

Both clients GET the same `query_range` answer (1 series x 241 points, as in concurrency.py)
from the Prometheus stand-in, n requests with `--in-flight` at once, on one uvloop event loop,
the body read whole; rounds alternate between them. What counts is the CPU time of this
process's loop thread per request: a worker spends it on its one loop for every tool call of
every investigation it carries.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import uvloop

from bench.harness.processes import Cluster
from bench.harness.report import Report, arguments, ratio

ROUNDS = 3


async def measure(get: Callable[[], Awaitable[None]], count: int, in_flight: int) -> float:
    """Milliseconds of this thread's CPU per request."""
    slots = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with slots:
            await get()

    before = _thread_cpu_s()
    await asyncio.gather(*(one() for _ in range(count)))
    return (_thread_cpu_s() - before) / count * 1000


def _thread_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


async def compare(url: str, count: int, in_flight: int) -> dict[str, list[float]]:
    now = time.time()
    params = {"query": "up", "start": str(now - 3600), "end": str(now), "step": "15"}
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with (
        httpx.AsyncClient(limits=limits) as client,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
    ):

        async def with_httpx() -> None:
            async with client.stream("GET", url, params=params) as response:
                await response.aread()

        async def with_aiohttp() -> None:
            async with session.get(url, params=params) as response:
                await response.read()

        clients = {"aiohttp": with_aiohttp, "httpx": with_httpx}
        for get in clients.values():  # warm-up: connections, first-use costs
            await measure(get, in_flight * 4, in_flight)
        costs: dict[str, list[float]] = {name: [] for name in clients}
        for _ in range(ROUNDS):
            for name, get in clients.items():
                costs[name].append(await measure(get, count, in_flight))
    return costs


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("-n", type=int, default=None, help="requests per round (2000)")
    parser.add_argument("--in-flight", type=int, default=32, help="requests at once (32)")
    args = parser.parse_args()
    count = args.n or (200 if args.quick else 2000)
    report = Report("HTTP client: CPU per tool request, aiohttp against httpx", quick=args.quick)
    with Cluster(keep_logs=args.keep_logs) as cluster:
        prometheus = cluster.server_module("prometheus", "bench.harness.stub_prometheus", [])
        url = f"{prometheus.url}/api/v1/query_range"
        costs = uvloop.run(compare(url, count, args.in_flight))
    report.figure(
        "workload", f"{ROUNDS} rounds of {count} GETs each, {args.in_flight} in flight, uvloop"
    )
    medians = {name: statistics.median(values) for name, values in costs.items()}
    for name, values in costs.items():
        each = ", ".join(f"{v:.3f}" for v in values)
        report.figure(f"{name}, CPU ms per request", f"median {medians[name]:.3f} ({each})")
    report.figure(
        "httpx / aiohttp", f"{ratio(medians['httpx'], medians['aiohttp']):.1f}x the CPU per request"
    )


if __name__ == "__main__":
    main()
