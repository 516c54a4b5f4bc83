"""The `persai` command: run the API, a worker, everything at once, or write a stack config."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
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


def _api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from persai.server import create_app

    if args.workers > 1:
        # each process builds its own app from the environment: its own Redis pool, event
        # reader and in-process verdict cache; all they share is in Redis
        uvicorn.run(
            "persai.server.app:from_environment",
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            log_config=None,
        )
        return 0
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None)
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from worker import run_worker

    try:
        settings.required_redis_url()
    except ValueError as exc:
        raise SystemExit(f"persai worker: {exc}") from exc
    run_worker(settings, concurrency=args.concurrency, quiet=args.quiet)
    return 0


def _stack_config(args: argparse.Namespace, settings: Settings) -> int:
    from persai.agent.stack_config import NoModelProvider, tokenizer_cache, write_stack_config

    try:
        write_stack_config(settings, Path(args.output), port=args.port)
    except NoModelProvider as exc:
        raise SystemExit(f"persai stack-config: {exc}") from exc
    # the tokenizer the stack loads at start-up, so that it needs no download
    tokenizer_cache(settings.stack_state_dir / "tiktoken")
    return 0


def _stack(args: argparse.Namespace, settings: Settings) -> int:
    from persai.agent.stack_config import NoModelProvider, server_environment, write_stack_config

    config = settings.stack_state_dir.expanduser() / "run.yaml"
    try:
        write_stack_config(settings, config, port=args.port, host=args.host)
    except NoModelProvider as exc:
        raise SystemExit(f"persai stack: {exc}") from exc
    here = Path(sys.executable).parent  # this environment's `llama` first
    llama = shutil.which("llama", path=f"{here}{os.pathsep}{os.environ.get('PATH', '')}")
    if llama is None:
        raise SystemExit("persai stack: the `llama` command (PyPI llama-stack) is not installed")
    argv = [llama, "stack", "run", str(config), "--port", str(args.port)]
    log.info("running %s", " ".join(argv))
    os.execve(llama, argv, {**os.environ, **server_environment(settings)})  # noqa: S606


def _demo_data(args: argparse.Namespace, settings: Settings) -> int:
    from persai.incidents import IncidentParams, generate_all, to_openmetrics

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(to_openmetrics(generate_all(IncidentParams(seed=args.seed))))
    log.info("incident data for `promtool tsdb create-blocks-from openmetrics` in %s", output)
    return 0


def _dev(args: argparse.Namespace, settings: Settings) -> int:
    from persai.dev import run_dev

    state_dir = Path(args.state_dir)
    return run_dev(settings, host=args.host, port=args.port, state_dir=state_dir, demo=args.demo)


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from persai.ask import ask

    return ask(
        url=args.url,
        question=args.question,
        datasource=args.datasource,
        token=args.token or os.environ.get("PERSAI_TOKEN"),
        duration=args.duration,
        model=args.model,
    )


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from persai.eval import EvalOptions, run_eval

    return run_eval(EvalOptions.from_args(args), sys.stdout)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="persai", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    dev = commands.add_parser(
        "dev", help="everything on this machine: Redis, Llama Stack, API, worker"
    )
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--state-dir", default=".persai", help="where embedded servers keep data")
    dev.add_argument(
        "--demo",
        action="store_true",
        help="also a Prometheus with incident data (datasource `demo`), and what to ask it",
    )
    dev.set_defaults(run=_dev)

    api = commands.add_parser("api", help="the HTTP API (uvicorn)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="API processes sharing the port (uvicorn workers; 1: this process only)",
    )
    api.set_defaults(run=_api)

    work = commands.add_parser("worker", help="a Celery worker running investigations")
    work.add_argument("--concurrency", type=int, default=None, help="investigations at once")
    work.add_argument("--quiet", action="store_true", help="no Celery banner")
    work.set_defaults(run=_worker)

    question = commands.add_parser("ask", help="ask a running PersAI a question, live")
    question.add_argument("question")
    question.add_argument("--datasource", "-d", required=True, help="Perses proxy path")
    question.add_argument("--url", default=os.environ.get("PERSAI_URL", "http://127.0.0.1:8000"))
    question.add_argument("--token", help="Perses access token (default: $PERSAI_TOKEN)")
    question.add_argument("--duration", help="time range ending now, e.g. 1h")
    question.add_argument("--model", help="model id (see GET /api/v1/models)")
    question.set_defaults(run=_ask)

    stack = commands.add_parser(
        "stack-config",
        help="write a Llama Stack run config (the same file serves OGX)",
        description="Write the run config of a Llama Stack server for the configured model "
        "providers. One file serves both servers: `llama stack run FILE` (llama-stack 0.7) "
        "and `ogx run FILE --insecure` (OGX 1.5).",
    )
    stack.add_argument("--output", "-o", default="llama-stack.yaml")
    stack.add_argument("--port", type=int, default=8321)
    stack.set_defaults(run=_stack_config)

    run_stack = commands.add_parser(
        "stack",
        help="run Llama Stack with the generated config and what it needs",
        description="Write the run config (as stack-config does) under PERSAI_STACK_STATE_DIR "
        "and run `llama stack run` on it, with the provider keys it refers to and a tokenizer "
        "cache (TIKTOKEN_CACHE_DIR) so that it needs no download.",
    )
    run_stack.add_argument("--host", default=None, help="listen address (default: all)")
    run_stack.add_argument("--port", type=int, default=8321)
    run_stack.set_defaults(run=_stack)

    demo = commands.add_parser("demo-data", help="write incident data as OpenMetrics")
    demo.add_argument("--output", "-o", default="incidents.om")
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(run=_demo_data)
    evaluate = commands.add_parser(
        "eval", help="score models on incident scenarios (docs/evaluation.md)"
    )
    evaluate.add_argument("--url", default=os.environ.get("PERSAI_URL", "http://127.0.0.1:8000"))
    evaluate.add_argument("--token", default=os.environ.get("PERSAI_TOKEN"), help="Perses token")
    evaluate.add_argument("--model", action="append", help="repeatable (default: the server's)")
    evaluate.add_argument("--scenarios", help="scenario file, YAML or JSON (default: built-in)")
    evaluate.add_argument("--only", action="append", help="scenario name(s), repeatable")
    evaluate.add_argument("--datasource", help="Perses proxy path of the evaluation Prometheus")
    evaluate.add_argument("--seed", type=int, help="incident seed (default: the suite's)")
    evaluate.add_argument("--end", help="end of the data, RFC 3339 (--write-data prints it)")
    evaluate.add_argument("--write-data", metavar="FILE", help="only write the data (OpenMetrics)")
    evaluate.add_argument("--report", metavar="FILE", help="write a JSON report")
    evaluate.add_argument("--parallel", type=int, default=1, help="investigations at once")
    evaluate.add_argument("--timeout", type=float, default=900.0, help="seconds per question")
    evaluate.add_argument(
        "--alert", action="store_true", help="ask each case as the alert it would fire"
    )
    evaluate.set_defaults(run=_eval, reports=None)
    compare = evaluate.add_subparsers(dest="eval_command").add_parser(
        "compare", help="two or more reports side by side"
    )
    compare.add_argument("reports", nargs="+", metavar="REPORT")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = _settings()
    setup_logging(settings.log_level, settings.log_format)
    code: int = args.run(args, settings)
    return code


if __name__ == "__main__":
    sys.exit(main())
