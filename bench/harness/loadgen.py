"""A closed-loop HTTP/1.1 load generator: a fixed number of keep-alive connections, each sending
its next GET as soon as the last answer arrived, for a fixed time.

    python -m bench.harness.loadgen URL --connections 32 --duration 5 [--header 'Cookie: ...']

Prints one JSON object: requests, errors (non-2xx or broken connections), requests/s and
latency percentiles. Requests are pre-encoded and answers parsed minimally (status line and
Content-Length or chunked), so that the generator costs the server's CPU as little as it can;
`wrk` does the same in C and is used instead when `run_load(..., tool="wrk")` asks for it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from bench.harness.report import percentile


@dataclass(frozen=True)
class Load:
    tool: str
    requests: int
    errors: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one response; its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    headers = head.lower()
    if b"transfer-encoding: chunked" in headers:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                return status
    match = re.search(rb"content-length: *(\d+)", headers)
    if match:
        await reader.readexactly(int(match.group(1)))
    return status


async def _connection(
    host: str, port: int, request: bytes, until: float, latencies: list[float]
) -> int:
    """Send requests on one connection until `until`; the number of errors."""
    errors = 0
    while time.perf_counter() < until:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            errors += 1
            await asyncio.sleep(0.01)
            continue
        try:
            while time.perf_counter() < until:
                began = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - began)
                if not 200 <= status < 300:
                    errors += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
        finally:
            writer.close()
    return errors


async def _python_load(
    url: str, headers: dict[str, str], connections: int, duration_s: float
) -> Load:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    latencies: list[float] = []
    began = time.perf_counter()
    until = began + duration_s
    errors = await asyncio.gather(
        *(_connection(host, port, request, until, latencies) for _ in range(connections))
    )
    elapsed = time.perf_counter() - began
    return Load(
        tool="python (asyncio, uvloop)" if "uvloop" in sys.modules else "python (asyncio)",
        requests=len(latencies),
        errors=sum(errors),
        duration_s=elapsed,
        rps=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
    )


def _wrk_load(url: str, headers: dict[str, str], connections: int, duration_s: float) -> Load:
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed")
    argv = [binary, "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    errors += sum(int(g) for g in socket_errors.groups()) if socket_errors else 0
    return Load(
        tool="wrk",
        requests=requests,
        errors=errors,
        duration_s=duration_s,
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_wrk_ms(re.search(r"50%\s+([\d.]+)(us|ms|s)", out)),
        p99_ms=_wrk_ms(re.search(r"99%\s+([\d.]+)(us|ms|s)", out)),
    )


def _wrk_ms(match: re.Match[str] | None) -> float:
    if match is None:
        return float("nan")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
    return float(match.group(1)) * scale


def run_load(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    connections: int = 32,
    duration_s: float = 5.0,
    tool: str = "python",
) -> Load:
    """Load `url` from a separate process (or wrk), so that this process's threads stay out."""
    headers = headers or {}
    if tool == "wrk":
        return _wrk_load(url, headers, connections, duration_s)
    argv = [sys.executable, "-m", "bench.harness.loadgen", url]
    argv += ["--connections", str(connections), "--duration", str(duration_s)]
    for name, value in headers.items():
        argv += ["--header", f"{name}: {value}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return Load(**json.loads(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    measure = _python_load(args.url, headers, args.connections, args.duration)
    try:
        import uvloop
    except ImportError:
        load = asyncio.run(measure)
    else:
        load = uvloop.run(measure)
    print(json.dumps(asdict(load)))


if __name__ == "__main__":
    main()
