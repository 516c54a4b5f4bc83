"""Lists that may be huge (metric names, label names and values, series) within a budget."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from persai.agent.results.budget import LineBudget
from persai.agent.results.range import DEFAULT_BUDGET_TOKENS
from persai.agent.results.text import common_labels, format_labels, without
from persai.agent.results.tokens import estimate_tokens, fit_text, fits


def render_list(
    items: Sequence[str] | Sequence[Mapping[str, str]],
    *,
    kind: str,
    budget_tokens: int = DEFAULT_BUDGET_TOKENS,
    hint: str | None = None,
) -> str:
    """Render a list of `kind` ("metric names", "values of label job", "series", …).

    Strings are listed one a line; label sets (from `/api/v1/series`) as selectors with the
    labels common to all stated once. The count always comes first; when not everything fits,
    the output says how many were left out and gives `hint` (or a generic one) to narrow it.
    """
    if not items:
        advice = hint or "Check the spelling, the matchers and the time range."
        return fit_text(f"No {kind} found. {advice}", budget_tokens)
    lines, head = _lines(items)
    header = [f"{len(items)} {kind}:", *head]
    full = "\n".join([*header, *lines])
    if fits(full, budget_tokens):
        return full
    advice = hint or _default_hint(kind)
    worst = f"Not shown: {len(items)} more {kind} (of {len(items)}). {advice}"
    budget = LineBudget(budget_tokens, estimate_tokens("\n".join([*header, worst])))
    for line in lines:
        if not budget.add(line):
            break
    omitted = len(lines) - len(budget.lines)
    footer = f"Not shown: {omitted} more {kind} (of {len(items)}). {advice}"
    return fit_text("\n".join([*header, *budget.lines, footer]), budget_tokens)


def _lines(items: Sequence[str] | Sequence[Mapping[str, str]]) -> tuple[list[str], list[str]]:
    """The item lines, and a header line for labels common to all label sets (if any)."""
    if all(isinstance(item, str) for item in items):
        return [str(item) for item in items], []
    label_sets = [item for item in items if not isinstance(item, str)]
    common = common_labels(label_sets)
    lines = [format_labels(without(labels, common) or labels) for labels in label_sets]
    head = [f"Labels common to all: {format_labels(common)}"] if common and len(items) > 1 else []
    return lines, head


def _default_hint(kind: str) -> str:
    return (
        f'Hint: narrow the {kind} with a match[] selector (e.g. {{job="..."}}), a name prefix '
        "or regex, or a shorter time range."
    )
