"""A token estimate that needs no tokenizer download, and fitting text into a budget of tokens."""

from __future__ import annotations

import re

# Byte-pair tokenizers (GPT-4's cl100k, Llama 3) split digits into groups of up to three, start
# a new token at most punctuation and need about one token per four letters of English. Counting
# that way overestimates them a little on prose and stays close on the number-heavy text tools
# produce (times, values, label sets), where a flat "four characters per token" undercounts by
# half. Whitespace is folded into the following token. One match is one token: a digit run of n
# matches ceil(n / 3) times, a letter run ceil(n / 4) times, and every other mark once.
_TOKENS = re.compile(r"\d{1,3}|[^\W\d_]{1,4}|[^\w\s]|_")


def estimate_tokens(text: str) -> int:
    """Estimated tokens in `text`: a digit run counts len/3, a letter run len/4, other marks 1.

    Additive over lines (joining lines with newlines adds nothing), so budgets can be summed.
    """
    return len(_TOKENS.findall(text))


def fits(text: str, budget_tokens: int) -> bool:
    """Whether `text` fits the budget. Every token is at least one character, so text no
    longer than the budget fits without being counted (most tool results are far smaller)."""
    return len(text) <= budget_tokens or estimate_tokens(text) <= budget_tokens


def fit_text(text: str, budget_tokens: int) -> str:
    """`text` if it fits the budget, else its first lines and a note saying where it was cut.

    The last resort when even a summary is too large for the budget (a tiny budget or a huge
    query string); the note keeps the cut visible to the reader.
    """
    if fits(text, budget_tokens):
        return text
    lines = text.splitlines()
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        note = _cut_note(len(lines) - index, budget_tokens)
        cost = estimate_tokens(line)
        if used + cost + estimate_tokens(note) > budget_tokens:
            return _with_note(kept, line, used, note, budget_tokens)
        kept.append(line)
        used += cost
    return "\n".join(kept)


def _cut_note(lines_left: int, budget_tokens: int) -> str:
    return f"[cut: {lines_left} more line(s) not shown; output limited to {budget_tokens} tokens]"


def _with_note(kept: list[str], line: str, used: int, note: str, budget_tokens: int) -> str:
    """Append as much of `line` as fits, then the note; the note alone if nothing else fits."""
    room = budget_tokens - used - estimate_tokens(note)
    words = line.split(" ")
    while words and estimate_tokens(" ".join(words) + " …") > room:
        words.pop()
    if words:
        kept.append(" ".join(words) + " …")
    kept.append(note)
    text = "\n".join(kept)
    if estimate_tokens(text) <= budget_tokens:
        return text
    return "[cut]" if budget_tokens >= 2 else ""
