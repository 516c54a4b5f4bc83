"""A PersAI worker whose model answers by a script, inside the worker (see `model.Script`).

    python -m bench.harness.fake_worker --script '{"model_delay_s": 2}' --concurrency 500

Everything else is PersAI's own worker (`worker.run_worker`), configured from the environment
like `persai worker`.
"""

from __future__ import annotations

import argparse

from persai.agent.scripted import Script, ScriptedGateway
from persai.config import Settings
from persai.logging import setup_logging
from worker import run_worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--script", default="{}", help="a model.Script as JSON")
    parser.add_argument("--concurrency", type=int, default=None)
    args = parser.parse_args()
    settings = Settings()
    setup_logging(settings.log_level, settings.log_format)
    gateway = ScriptedGateway(Script.from_json(args.script))
    run_worker(settings, concurrency=args.concurrency, gateway=gateway)


if __name__ == "__main__":
    main()
