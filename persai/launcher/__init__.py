"""One way to start a server, for `persai dev`, the tests and the benchmarks.

Children run in sessions of their own with their log in a file and stop with SIGTERM, then
SIGKILL (`Child`); an ASGI app runs in a thread of this process (`serve_in_thread`); servers
listen on free loopback ports (`free_port`, `wait_for_port`); a missing binary raises
`MissingBinary` with what to install (`which`). The servers PersAI runs beside itself are
started in `servers`: Redis, Llama Stack, Prometheus over backfilled data.
"""

from persai.launcher.process import (
    Child,
    MissingBinary,
    free_port,
    wait_for_port,
    wait_until,
    which,
)
from persai.launcher.servers import (
    Prometheus,
    backfill,
    llama_binary,
    llama_stack_argv,
    redis_server_binary,
    start_llama_stack,
    start_prometheus,
    start_redis,
)
from persai.launcher.thread import ThreadedServer, serve_in_thread

__all__ = [
    "Child",
    "MissingBinary",
    "Prometheus",
    "ThreadedServer",
    "backfill",
    "free_port",
    "llama_binary",
    "llama_stack_argv",
    "redis_server_binary",
    "serve_in_thread",
    "start_llama_stack",
    "start_prometheus",
    "start_redis",
    "wait_for_port",
    "wait_until",
    "which",
]
