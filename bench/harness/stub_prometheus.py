"""A tiny Prometheus-compatible HTTP server for the tools to query: `/api/v1/query_range`
answers a few series over the asked range (one of them with a spike), at once.

    python -m bench.harness.stub_prometheus --port 9090 [--series 5]

`GET /bench/requests` says how many queries it answered (to check the tools really ran).
"""

from __future__ import annotations

import argparse
import math
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_POINTS = 11_000  # Prometheus refuses more points per series


def matrix(series: int, start: float, end: float, step: float) -> list[dict[str, Any]]:
    """`series` request-rate series over [start, end]; the first one spikes in the middle."""
    points = min(MAX_POINTS, int((end - start) // step) + 1) if step > 0 and end >= start else 0
    middle = points // 2
    result = []
    for index in range(series):
        base = 10.0 * (index + 1)
        values = [
            [
                start + i * step,
                f"{base * (5 if index == 0 and abs(i - middle) < 3 else 1) + math.sin(i / 7):.3f}",
            ]
            for i in range(points)
        ]
        metric = {"__name__": "http_requests:rate5m", "service": f"service-{index}"}
        result.append({"metric": metric, "values": values})
    return result


def build_app(series: int) -> Starlette:
    answered = {"query_range": 0}

    async def query_range(request: Request) -> Response:
        answered["query_range"] += 1
        # as Prometheus's r.FormValue: the URL's parameters, then a POSTed form's over them
        params = dict(request.query_params)
        if request.method == "POST":
            form = parse_qs((await request.body()).decode(), keep_blank_values=True)
            params.update({name: values[0] for name, values in form.items()})
        try:
            start, end = float(params["start"]), float(params["end"])
            step = float(params.get("step", "60"))
        except (KeyError, ValueError):
            error = {"status": "error", "errorType": "bad_data", "error": "bad start/end/step"}
            return JSONResponse(error, status_code=400)
        data = {"resultType": "matrix", "result": matrix(series, start, end, step)}
        return JSONResponse({"status": "success", "data": data})

    async def requests(_: Request) -> Response:
        return JSONResponse(answered)

    async def ready(_: Request) -> Response:
        return Response("Prometheus Server is Ready.\n")

    routes = [
        Route("/api/v1/query_range", query_range, methods=["GET", "POST"]),
        Route("/bench/requests", requests),
        Route("/-/ready", ready),
    ]
    return Starlette(routes=routes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--series", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        build_app(args.series),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
