"""A conversation's messages as JSON, so that follow-ups see earlier turns after any restart."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from persai.agent.llama import AssistantMessage, Message, ToolCall, ToolResult, UserMessage

log = logging.getLogger(__name__)

_KINDS: dict[str, type[Message]] = {
    "user": UserMessage,
    "assistant": AssistantMessage,
    "tool_call": ToolCall,
    "tool_result": ToolResult,
}
_NAMES = {kind: name for name, kind in _KINDS.items()}


def dump(messages: Iterable[Message]) -> list[dict[str, Any]]:
    return [{"kind": _NAMES[type(m)], **{s: getattr(m, s) for s in m.__slots__}} for m in messages]


def load(items: Iterable[dict[str, Any]]) -> list[Message]:
    """Messages from their JSON form; an item of an unknown kind is skipped (and logged)."""
    messages: list[Message] = []
    for item in items:
        fields = dict(item)
        kind = _KINDS.get(fields.pop("kind", ""))
        if kind is None:
            log.warning("skipping a history item of unknown kind")
            continue
        messages.append(kind(**fields))
    return messages
