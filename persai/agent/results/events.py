"""What an analysis reports and what it is told: the grid, events, and what is shared.

`Explained` carries what a series has in common with most series of its result (see
`persai.agent.results.shared`): moves of the values all make at the same steps, a gap in all of
them, a wave of counter resets, where the data of all starts or ends. A series' own analysis
does not report those; the result states them once.
"""

from __future__ import annotations

from dataclasses import dataclass

Span = tuple[float, float]
"""From, to: Unix seconds, both included."""


@dataclass(frozen=True)
class Grid:
    """The range query's evaluation times: `start` to `end` every `step` seconds."""

    start: float
    end: float
    step: float


@dataclass(frozen=True)
class Event:
    """One thing that stands out, with how much (`score`) and when (`at`, Unix seconds)."""

    score: float
    at: float
    text: str
    span: tuple[float, float] | None = None


@dataclass(frozen=True)
class Explained:
    """What one series shares with most others, each span widened by `slack` seconds.

    `levels`: (span, sign) where the values of most series lie above (+1) or below (-1) their
    usual; a stretch of this series there in that direction, and any sudden change there, is
    shared. `changes`: (span, sign) where most series change suddenly in that direction; a
    stretch entered and left with such changes is shared too.
    `gaps`, `resets`: spans where most series have no data / reset their counters.
    `start`, `end`: where the data of most series starts / ends (None: nothing shared).
    """

    levels: tuple[tuple[Span, int], ...] = ()
    changes: tuple[tuple[Span, int], ...] = ()
    gaps: tuple[Span, ...] = ()
    resets: tuple[Span, ...] = ()
    start: float | None = None
    end: float | None = None
    slack: float = 0.0
    partial: tuple[Span, ...] = ()
    """Spans where a drop may be a partial window (of `rate()`, at the edges of the data),
    for a series with no others to tell: reported, but not as standing out."""

    def stretch(self, span: Span, peak: float, sign: int, edges: tuple[bool, bool]) -> bool:
        """Whether a stretch of the series in direction `sign` (`span`, most extreme at `peak`;
        `edges`: whether it starts with the series, ends with it) is shared: it peaks where most
        series lie that way, or begins and ends with changes most series make (or an end)."""
        if any(s == sign and self._within(peak, level) for level, s in self.levels):
            return True
        enters = self._changed(span[0], sign)
        leaves = self._changed(span[1], -sign)
        return (enters or edges[0]) and (leaves or edges[1]) and (enters or leaves)

    def _changed(self, at: float, sign: int) -> bool:
        return any(s == sign and self._within(at, span) for span, s in self.changes)

    def change(self, at: float, sign: int) -> bool:
        """Whether a sudden change at `at` in direction `sign` is shared (or inside a shared
        stretch, which begins and ends with such changes)."""
        return any(self._within(at, span) for span, _ in self.levels) or self._changed(at, sign)

    def gap(self, span: Span) -> bool:
        """Whether missing points from `span[0]` to `span[1]` lie in a shared gap."""
        return any(self._within(span[0], g) and self._within(span[1], g) for g in self.gaps)

    def reset(self, at: float) -> bool:
        return any(self._within(at, span) for span in self.resets)

    def starts(self, at: float) -> bool:
        """Whether data starting at `at` starts where most series' data does."""
        return self.start is not None and abs(at - self.start) <= self.slack

    def ends(self, at: float) -> bool:
        """Whether data ending at `at` ends where most series' data does."""
        return self.end is not None and abs(at - self.end) <= self.slack

    def partial_drop(self, span: Span, sign: int) -> bool:
        """Whether a drop from `span[0]` to `span[1]` lies where windows may be partial."""
        return sign < 0 and any(
            self._within(span[0], p) and self._within(span[1], p) for p in self.partial
        )

    def _within(self, at: float, span: Span) -> bool:
        return span[0] - self.slack <= at <= span[1] + self.slack


NOTHING_EXPLAINED = Explained()

PARTIAL_NOTE = (
    " (at an edge of the data, where windows reaching past it are partial and come out low:"
    " perhaps no change)"
)


def demoted(event: Event, cap: float) -> Event:
    """The event, scored at most `cap` (so not standing out), and saying why it may be none."""
    return Event(min(event.score, cap), event.at, event.text + PARTIAL_NOTE, event.span)
