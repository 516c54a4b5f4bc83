"""Operations endpoints: liveness, readiness, version, metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from persai.errors import PersAIError
from persai.server.deps import State
from persai.version import __version__

router = APIRouter(tags=["operations"])

WORKER_SEEN_S = 30.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Alive: the process answers. Says nothing about dependencies (see /readyz)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: State) -> JSONResponse:
    """Ready: Redis answers, Llama Stack answers, and a worker was seen in the last 30 s."""
    checks: dict[str, dict[str, Any]] = {
        "redis": await _check_redis(state),
        "llama_stack": await _check_llama_stack(state),
    }
    if checks["redis"]["ok"]:
        checks["worker"] = await _check_workers(state)
    else:
        checks["worker"] = {"ok": False, "reason": "unknown: Redis is unreachable"}
    ready = all(check["ok"] for check in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


async def _check_redis(state: State) -> dict[str, Any]:
    try:
        await state.store.ping()
    except PersAIError as exc:
        return {"ok": False, "reason": exc.message}
    return {"ok": True}


async def _check_llama_stack(state: State) -> dict[str, Any]:
    try:
        models = await state.models()
    except PersAIError as exc:
        return {"ok": False, "reason": exc.message}
    if not models:
        return {
            "ok": False,
            "reason": "Llama Stack serves no model: set PERSAI_LLM_BASE_URL or a provider key",
        }
    return {"ok": True, "models": len(models)}


async def _check_workers(state: State) -> dict[str, Any]:
    # by Redis's clock, which stamped the heartbeats: the API's and the workers' hosts may
    # disagree on the time by any amount
    alive = await state.store.workers_seen(WORKER_SEEN_S)
    if not alive:
        return {"ok": False, "reason": f"no worker heartbeat in the last {WORKER_SEEN_S:.0f} s"}
    return {"ok": True, "workers": alive}


@router.get("/version")
async def version() -> dict[str, str]:
    return {"version": __version__}


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"description": "The Prometheus text exposition format."}},
)
async def metrics() -> Response:
    """Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
