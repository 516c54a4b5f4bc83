"""The `persai` command: run the API, a worker, everything at once, or write a stack config."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from persai.config import Settings
from persai.logging import setup_logging

log = logging.getLogger("persai")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise SystemExit(f"persai: invalid configuration:\n{exc}") from exc


def _api(args: argparse.Namespace) -> int:
    import uvicorn

    from persai.server import create_app

    settings = _settings()
    setup_logging(settings.log_level, settings.log_format)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from worker import run_worker

    settings = _settings()
    setup_logging(settings.log_level, settings.log_format)
    if not settings.redis_url:
        raise SystemExit("persai worker: PERSAI_REDIS_URL is required")
    run_worker(settings, concurrency=args.concurrency)
    return 0


def _stack_config(args: argparse.Namespace) -> int:
    from persai.agent.stack_config import NoModelProvider, write_stack_config

    settings = _settings()
    setup_logging(settings.log_level, settings.log_format)
    try:
        write_stack_config(settings, Path(args.output), port=args.port)
    except NoModelProvider as exc:
        raise SystemExit(f"persai stack-config: {exc}") from exc
    return 0


def _dev(args: argparse.Namespace) -> int:
    from persai.dev import run_dev

    settings = _settings()
    setup_logging(settings.log_level, settings.log_format)
    return run_dev(settings, host=args.host, port=args.port, state_dir=Path(args.state_dir))


def _ask(args: argparse.Namespace) -> int:
    from persai.ask import ask

    return ask(
        url=args.url,
        question=args.question,
        datasource=args.datasource,
        token=args.token or os.environ.get("PERSAI_TOKEN"),
        duration=args.duration,
        model=args.model,
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="persai", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    dev = commands.add_parser(
        "dev", help="everything on this machine: Redis, Llama Stack, API, worker"
    )
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--state-dir", default=".persai", help="where embedded servers keep data")
    dev.set_defaults(run=_dev)

    api = commands.add_parser("api", help="the HTTP API (uvicorn)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.set_defaults(run=_api)

    work = commands.add_parser("worker", help="a Celery worker running investigations")
    work.add_argument("--concurrency", type=int, default=None, help="investigations at once")
    work.set_defaults(run=_worker)

    question = commands.add_parser("ask", help="ask a running PersAI a question, live")
    question.add_argument("question")
    question.add_argument("--datasource", "-d", required=True, help="Perses proxy path")
    question.add_argument("--url", default=os.environ.get("PERSAI_URL", "http://127.0.0.1:8000"))
    question.add_argument("--token", help="Perses access token (default: $PERSAI_TOKEN)")
    question.add_argument("--duration", help="time range ending now, e.g. 1h")
    question.add_argument("--model", help="model id (see GET /api/v1/models)")
    question.set_defaults(run=_ask)

    stack = commands.add_parser("stack-config", help="write a Llama Stack run config")
    stack.add_argument("--output", "-o", default="llama-stack.yaml")
    stack.add_argument("--port", type=int, default=8321)
    stack.set_defaults(run=_stack_config)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
