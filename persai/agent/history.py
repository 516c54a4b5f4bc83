"""A conversation's messages as JSON, so that follow-ups see earlier turns after any restart;
and what of them a follow-up sends the model (`fit`), within a budget of tokens."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from persai.agent.llama import AssistantMessage, Message, ToolCall, ToolResult, UserMessage
from persai.agent.results.tokens import estimate_tokens

log = logging.getLogger(__name__)

DEFAULT_BUDGET_TOKENS = 8000
"""What the earlier turns of a conversation may cost a model call: a quarter of a 32k context,
leaving room for the instructions, the tools' schemas and the turn at hand."""
SUMMARY_TOKENS = 60
"""An earlier tool result shortened to its beginning (what was queried, over which range)."""
EXCERPT_TOKENS = 150
"""An earlier answer shortened to its beginning."""
MESSAGE_TOKENS = 4
"""What a message costs beyond its text (its role and framing in the model's template)."""

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


def cost(message: Message) -> int:
    """Estimated tokens of one message as the model reads it."""
    match message:
        case UserMessage(text=text) | AssistantMessage(text=text):
            return MESSAGE_TOKENS + estimate_tokens(text)
        case ToolCall(name=name, arguments=arguments):
            return MESSAGE_TOKENS + estimate_tokens(name) + estimate_tokens(arguments)
        case ToolResult(output=output):
            return MESSAGE_TOKENS + estimate_tokens(output)


def fit(messages: Sequence[Message], budget_tokens: int) -> list[Message]:
    """The earlier turns of a conversation as sent to the model: within `budget_tokens`.

    All of them when they fit. Otherwise, oldest first and only as far as needed: tool results
    are shortened to their beginning, then tool calls are left out with their results, then
    answers are shortened to their beginning, then whole turns are left out (but the first
    question, which says what the conversation is about); a note in front says what was done.
    The conversation's stored history stays whole.
    """
    items = [_Item(m, cost(m)) for m in messages]  # each text is estimated once: a linear pass
    if sum(item.tokens for item in items) <= budget_tokens:
        return list(messages)
    fitter = _Fitter(_turns(items), budget_tokens - _NOTE_TOKENS)
    for shorten in (
        fitter.summarise_results,
        fitter.drop_tool_calls,
        fitter.shorten_answers,
        fitter.drop_turns,
        fitter.shorten_first_turn,
    ):
        if fitter.fits():
            break
        shorten()
    return fitter.messages()


_PIECES = re.compile(r"\S+|\s+")
_CUT = " … [the rest is left out of the conversation's history]"
_CUT_TOKENS = estimate_tokens(_CUT)


def shorten(text: str, budget_tokens: int) -> str:
    """`text` if it fits `budget_tokens`, else its beginning (cut after a word) and a mark
    saying the rest is left out; in one pass (the estimate adds up over words)."""
    if len(text) <= budget_tokens:  # a token is at least one character
        return text
    room = budget_tokens - _CUT_TOKENS
    if room < 0:  # no room for the mark
        return text[: max(budget_tokens, 0)]
    used = end = 0
    for piece in _PIECES.finditer(text):
        tokens = estimate_tokens(piece.group())
        if used + tokens > room:
            # a first word longer than the room (a JSON blob) is cut where the room ends
            head = text[:end].rstrip() if end else text[:room]
            return head + _CUT
        used, end = used + tokens, piece.end()
    return text


@dataclass(frozen=True, slots=True)
class _Item:
    message: Message
    tokens: int


def _turns(items: Iterable[_Item]) -> list[list[_Item]]:
    """The messages by turn: each turn begins with its question."""
    turns: list[list[_Item]] = []
    for item in items:
        if isinstance(item.message, UserMessage) or not turns:
            turns.append([])
        turns[-1].append(item)
    return turns


@dataclass
class _Shortened:
    """What `fit` did, counted for the note to the model."""

    summarised: int = 0
    calls_dropped: int = 0
    answers_shortened: int = 0
    turns_dropped: int = 0

    def note(self) -> str:
        done = [
            f"{count} {what}"
            for count, what in (
                (self.summarised, "tool result(s) shortened to their beginning"),
                (self.calls_dropped, "tool call(s) left out with their results"),
                (self.answers_shortened, "answer(s) shortened or left out"),
                (self.turns_dropped, "earlier question(s) left out with their answers"),
            )
            if count
        ]
        return (
            "[Note from PersAI, not from the user: the earlier turns of this conversation were "
            f"shortened to fit the model's context ({'; '.join(done) or 'texts shortened'}). "
            "Run the tools again for details that are missing.]"
        )


_NOTE_TOKENS = MESSAGE_TOKENS + estimate_tokens(_Shortened(999, 999, 999, 999).note())


class _Fitter:
    """The turns, shortened step by step until they fit the budget."""

    def __init__(self, turns: list[list[_Item]], budget_tokens: int) -> None:
        self.turns = turns
        self.budget = budget_tokens
        self.used = sum(item.tokens for turn in turns for item in turn)
        self.done = _Shortened()

    def fits(self) -> bool:
        return self.used <= self.budget

    def _replace(self, turn: list[_Item], index: int, message: Message) -> bool:
        """Put `message` in place of `turn[index]`; whether that saved tokens."""
        item = _Item(message, cost(message))
        saved = turn[index].tokens - item.tokens
        if saved > 0:
            turn[index], self.used = item, self.used - saved
        return saved > 0

    def summarise_results(self) -> None:
        for turn in self.turns:
            for index, item in enumerate(turn):
                if self.fits():
                    return
                if isinstance(result := item.message, ToolResult):
                    summary = ToolResult(result.call_id, shorten(result.output, SUMMARY_TOKENS))
                    self.done.summarised += self._replace(turn, index, summary)

    def drop_tool_calls(self) -> None:
        """A turn's tool calls and their results go together: a call needs its result."""
        for turn in self.turns:
            if self.fits():
                return
            calls = [item for item in turn if isinstance(item.message, ToolCall | ToolResult)]
            turn[:] = [item for item in turn if not isinstance(item.message, ToolCall | ToolResult)]
            self.used -= sum(item.tokens for item in calls)
            self.done.calls_dropped += sum(isinstance(i.message, ToolCall) for i in calls)

    def shorten_answers(self) -> None:
        for turn in self.turns:
            for index, item in enumerate(turn):
                if self.fits():
                    return
                if isinstance(answer := item.message, AssistantMessage):
                    excerpt = AssistantMessage(shorten(answer.text, EXCERPT_TOKENS))
                    self.done.answers_shortened += self._replace(turn, index, excerpt)

    def drop_turns(self) -> None:
        """The turns after the first, oldest first."""
        for turn in self.turns[1:]:
            if self.fits():
                return
            self.used -= sum(item.tokens for item in turn)
            turn.clear()
            self.done.turns_dropped += 1

    def shorten_first_turn(self) -> None:
        """What is left past all else: the first question alone, cut to the budget."""
        first = [item.message for item in self.turns[0]]
        question = next((m for m in first if isinstance(m, UserMessage)), None)
        self.done.answers_shortened += sum(isinstance(m, AssistantMessage) for m in first)
        self.turns[0], self.used = [], 0
        if question is not None:
            cut = UserMessage(shorten(question.text, self.budget - MESSAGE_TOKENS))
            self.turns[0], self.used = [_Item(cut, cost(cut))], cost(cut)

    def messages(self) -> list[Message]:
        """The shortened turns, the note in front of the first question."""
        if self.budget < 0:  # not even room for the note
            return []
        kept = [item.message for turn in self.turns for item in turn]
        note = self.done.note()
        if kept and isinstance(kept[0], UserMessage):
            return [UserMessage(f"{note}\n\n{kept[0].text}"), *kept[1:]]
        return [UserMessage(note), *kept]
