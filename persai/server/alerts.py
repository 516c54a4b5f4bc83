"""`POST /api/v1/alerts/alertmanager`: Alertmanager's webhook, one investigation per firing
group (see `persai.alerts`).

Answers: 200 with the investigation (new, a follow-up in the group's conversation, or the one
already answering these alerts); 200 with the jobs a `resolved` post closed; 400 for a body
that is not JSON, 422 for one that is not Alertmanager's payload version 4; 401 for a missing
or wrong credential, whatever the body (nothing else is said about the service).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, ValidationError

from persai.alerts import (
    AlertGroups,
    AlertsConfig,
    Notification,
    Outbox,
    Receiver,
    ServiceIdentities,
    amend,
    follow_up,
    question,
    window,
)
from persai.alerts.access import ReadAccess
from persai.alerts.listing import AlertFilters, list_alert_jobs
from persai.config import Settings
from persai.credentials import Credentials
from persai.errors import InvalidRequest, NotFound, PersAIError, Unauthenticated
from persai.jobs import AlertRef, Job, JobStatus, utcnow
from persai.jobs.submission import Question
from persai.server.auth import Principal
from persai.server.deps import State
from persai.server.schemas import ERROR_RESPONSES
from persai.server.state import AppState

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/alerts", responses=ERROR_RESPONSES, tags=["alerts"])
MAX_ALERT_BODY_BYTES = 256 * 1024


class Unprocessable(PersAIError):
    status_code = 422
    error_type = "validation_error"


class AlertAnswer(BaseModel):
    decision: Literal["new", "follow_up", "same", "resolved"]
    investigations: list[str]
    conversation_id: str | None = None


class _Services:
    """What the route needs beside the app's state, made on its first use."""

    def __init__(self, config: AlertsConfig, state: AppState) -> None:
        self.config = config
        self.state = state
        settings = state.settings
        self.groups = AlertGroups(state.redis)
        self.outbox = Outbox(state.redis)
        perses = str(settings.perses_api_url) if settings.perses_api_url is not None else None
        self.access = ReadAccess(
            config,
            settings.alerts_readers,
            state.redis,
            state.http,
            perses if settings.auth else None,
            settings.perses_api_prefix,
        )
        self.identities = None
        if settings.auth and settings.perses_api_url is not None and state.sealer is not None:
            self.identities = ServiceIdentities(
                state.redis, state.http, str(settings.perses_api_url), state.sealer
            )


def install(app: FastAPI, settings: Settings, config: AlertsConfig | None) -> None:
    """Serve the webhook when receivers are configured (checked against `settings` now)."""
    if config is None:
        return
    perses_auth = settings.auth and settings.perses_api_url is not None
    for receiver in config.receivers:
        if perses_auth and receiver.identity is None:
            raise ValueError(
                f"PERSAI_ALERTS_CONFIG: receiver {receiver.name!r} needs an identity (the Perses "
                "user its investigations run as) while PersAI runs with Perses and authentication"
            )
    app.state.alerts_config = config
    app.state.alert_reader = _readable_document
    app.state.alert_lister = _readable_jobs
    app.include_router(router)


async def _services(request: Request, state: State) -> _Services:
    services: _Services | None = getattr(request.app.state, "alert_services", None)
    if services is None or services.state is not state:  # made again with each lifespan
        services = _Services(request.app.state.alerts_config, state)
        request.app.state.alert_services = services
    return services


Services = Annotated[_Services, Depends(_services)]


def _receiver(request: Request, services: _Services) -> Receiver:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    receiver = None
    if hmac.compare_digest(scheme.lower().encode(), b"bearer") and token:
        receiver = services.config.receiver_for(token.strip())
    if receiver is None:
        raise Unauthenticated("a valid receiver credential is needed (Authorization: Bearer)")
    return receiver


async def _notification(request: Request) -> Notification:
    body = await request.body()
    if len(body) > MAX_ALERT_BODY_BYTES:
        raise InvalidRequest(f"the payload is larger than {MAX_ALERT_BODY_BYTES} bytes")
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest("the body is not JSON") from exc
    try:
        return Notification.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise Unprocessable(f"not an Alertmanager webhook payload (version 4): {problems}") from exc


@router.post("/alertmanager", response_model=AlertAnswer)
async def alertmanager(request: Request, state: State, services: Services) -> AlertAnswer:
    """Alertmanager's webhook: investigate a firing group once; record its resolution."""
    receiver = _receiver(request, services)
    notification = await _notification(request)
    if notification.receiver != receiver.name:
        raise Unprocessable(
            f"the payload is for receiver {notification.receiver!r}, the credential for another"
        )
    if notification.status == "resolved" or not notification.firing:
        return await _resolve(state, services, receiver, notification)
    return await _fire(state, services, receiver, notification)


async def _fire(
    state: AppState, services: _Services, receiver: Receiver, notification: Notification
) -> AlertAnswer:
    firing = notification.firing
    fingerprints = [a.fingerprint for a in firing]
    candidate = uuid.uuid4().hex
    claim = await services.groups.claim(
        receiver.name, notification.group_key, fingerprints, candidate
    )
    if claim.decision == "same":
        return AlertAnswer(
            decision="same",
            investigations=[claim.job_id],
            conversation_id=claim.conversation_id or None,
        )
    try:  # from here on, whatever fails undoes the claim
        if claim.decision == "follow_up":
            new = [a for a in firing if a.fingerprint in set(claim.new_fingerprints)]
            asked = follow_up(notification, receiver, new)
        else:
            new, asked = firing, question(notification, receiver, firing)
        alert = AlertRef(
            receiver=receiver.name,
            group_key=notification.group_key,
            alertname=notification.alertname,
            fingerprints=[a.fingerprint for a in new],
            starts_at=min(a.starts_at for a in new),
        )
        await services.outbox.expect(candidate)  # before the job: no ended job goes unsent
        credentials = await _credentials(services, receiver)
        job = await state.submissions.submit(
            receiver.owner,
            credentials,
            Question(
                question=asked[: state.settings.question_max_chars],
                datasource=receiver.datasource_for(dict(notification.common_labels)),
                conversation_id=claim.conversation_id or None,
                time_range=window(new, receiver),
                job_id=candidate,
                alert=alert,
            ),
        )
    except BaseException:
        # not stored: Alertmanager retries, and the retry must claim again
        group = notification.group_key
        await asyncio.shield(services.groups.release(receiver.name, group, fingerprints, claim))
        await asyncio.shield(services.outbox.forget(candidate))
        raise
    if claim.decision == "new":
        await services.groups.set_conversation(
            receiver.name, notification.group_key, job.conversation_id
        )
    log.info("alert %s: investigation %s (%s)", receiver.name, job.id, claim.decision)
    return AlertAnswer(
        decision=claim.decision, investigations=[job.id], conversation_id=job.conversation_id
    )


async def _credentials(services: _Services, receiver: Receiver) -> Credentials | None:
    if services.identities is None or receiver.identity is None:
        return None
    return await services.identities.credentials(receiver.name, receiver.identity)


async def _resolve(
    state: AppState, services: _Services, receiver: Receiver, notification: Notification
) -> AlertAnswer:
    now = utcnow()
    ttl_s = state.settings.job_retention_s
    jobs = await services.groups.resolve(
        receiver.name, notification.group_key, now.timestamp(), ttl_s
    )
    for job_id in jobs:
        job = await state.store.get(job_id)
        if job is None or job.alert is None:
            continue
        _mark_resolved(job, now)
        if job.status is JobStatus.QUEUED:  # not worth running any more
            await state.store.request_cancel(job_id)
            job.finished_at = now
            await state.store.transition(job, JobStatus.CANCELLED, (JobStatus.QUEUED,))
        await amend(state.redis, job_id, lambda ended: _mark_resolved(ended, now))
    return AlertAnswer(decision="resolved", investigations=jobs)


def _mark_resolved(job: Job, at: Any) -> bool:
    if job.alert is None or job.alert.status == "resolved":
        return False
    job.alert.status, job.alert.resolved_at = "resolved", at
    return True


async def _readable_document(
    request: Request, state: AppState, user: Principal, job_id: str
) -> str:
    """An alert investigation's JSON for a user who may read it (else the same 404)."""
    services = await _services(request, state)
    job = await state.store.get(job_id)
    if job is None or not await services.access.may_read(user.user, user.credentials, job):
        raise NotFound(f"no investigation {job_id!r}")
    return job.model_dump_json()


async def _readable_jobs(
    request: Request, state: AppState, user: Principal, filters: AlertFilters
) -> list[Job]:
    """The alert investigations `user` may read that match `filters`, newest first."""
    services = await _services(request, state)

    async def readable(job: Job) -> bool:
        return await services.access.may_read(user.user, user.credentials, job)

    return await list_alert_jobs(state.redis, state.store, services.config, readable, filters)
