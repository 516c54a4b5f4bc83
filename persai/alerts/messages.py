"""What a notification says: a generic JSON document (signed), or Slack blocks.

Built from the investigation's record when it is sent: its outcome, the answer's summary, the
evidence queries with their windows and findings, the alert, a link. A record holds no token
or secret (the sealed credentials live beside it and are gone once it ends), and neither does
anything here: a destination's secret only signs.

The signature: `X-PersAI-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`,
with `X-PersAI-Timestamp: <Unix seconds>`; a receiver checks both, and refuses old timestamps
(replays). `X-PersAI-Delivery` is the same for every attempt of one notification (at least
once: a receiver that keeps the ids it saw drops the repeats).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from persai.jobs import Job

SUMMARY_CHARS = 1500
"""What of the answer a Slack message shows (Slack's section text is limited to 3000)."""
_SLACK_EVIDENCE = 5


def summary(answer: str | None, limit: int = SUMMARY_CHARS) -> str:
    """The answer's first paragraph (where answers put their conclusion), at most `limit`
    characters."""
    text = (answer or "").strip().split("\n\n", 1)[0].strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def link(public_url: str | None, job_id: str) -> str | None:
    return f"{public_url.rstrip('/')}/api/v1/investigations/{job_id}" if public_url else None


def document(job: Job, url: str | None) -> dict[str, Any]:
    """The generic webhook's JSON document."""
    alert = job.alert.model_dump(mode="json", exclude={"notifications"}) if job.alert else None
    return {
        "version": "1",
        "investigation": {
            "id": job.id,
            "status": job.status.value,
            "question": job.question,
            "answer": job.answer,
            "summary": summary(job.answer),
            "error": job.error,
            "datasource": job.datasource,
            "conversation_id": job.conversation_id,
            "created_at": job.created_at.isoformat(),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "evidence": [e.model_dump(mode="json") for e in job.evidence],
            "link": url,
        },
        "alert": alert,
    }


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def slack(job: Job, url: str | None) -> dict[str, Any]:
    """A Slack incoming webhook's message: the alert, the outcome, the summary, the queries."""
    name = job.alert.alertname if job.alert else "alert"
    state = job.alert.status if job.alert else "firing"
    outcome = {"succeeded": "investigated", "failed": "investigation failed"}.get(
        job.status.value, f"investigation {job.status.value}"
    )
    title = f"{name} ({state}): {outcome}"[:150]
    text = summary(job.answer) or (job.error or "No answer.")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _escape(text)}},
    ]
    for item in job.evidence[:_SLACK_EVIDENCE]:
        lines = [f"`{_escape(item.query[:300])}`", f"{item.start:%H:%M} to {item.end:%H:%M} UTC"]
        lines += [f"• {_escape(f)}" for f in item.findings[:3]]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}})
    if url:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{url}|Open in PersAI>"}]}
        )
    return {"text": f"{title}: {text[:300]}", "blocks": blocks}


def _escape(text: str) -> str:
    """Slack's mrkdwn control characters (api.slack.com: formatting, escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def encoded(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
