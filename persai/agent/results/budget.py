"""Filling a token budget line by line, keeping room for what must always be said."""

from __future__ import annotations

from persai.agent.results.tokens import estimate_tokens


class LineBudget:
    """Lines added in order while they fit; `reserve` tokens stay free for a closing part."""

    def __init__(self, budget_tokens: int, reserve: int = 0) -> None:
        self.budget_tokens = budget_tokens
        self.used = reserve
        self.lines: list[str] = []
        self.full = False

    def add(self, line: str) -> bool:
        """Add `line` if it fits; once one does not, nothing more is added (order is kept)."""
        cost = estimate_tokens(line)
        if self.full or self.used + cost > self.budget_tokens:
            self.full = True
            return False
        self.lines.append(line)
        self.used += cost
        return True

    def add_section(self, title: str, lines: list[str]) -> int:
        """Add a title and as many of `lines` as fit (the title only with at least one line).

        Returns how many of `lines` were added.
        """
        if not lines or self.full:
            return 0
        title_cost = estimate_tokens(title)
        if self.used + title_cost + estimate_tokens(lines[0]) > self.budget_tokens:
            self.full = True
            return 0
        self.lines.append(title)
        self.used += title_cost
        added = 0
        for line in lines:
            if not self.add(line):
                break
            added += 1
        return added
