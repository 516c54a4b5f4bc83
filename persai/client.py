"""PersAI's public API as its own command-line clients use it (`persai ask`, `persai eval`).

One way to open a connection (a Perses access token as `Authorization: Bearer`), to build a
submission, and to say what an error answer was.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

__all__ = ["INVESTIGATIONS", "error_text", "open_client", "printable", "submission"]

INVESTIGATIONS = "/api/v1/investigations"

# C0 controls but tab and newline, DEL, and C1 controls (U+0080-U+009F: a terminal may take
# U+009B as CSI): ESC starts CSI and OSC sequences (cursor moves, erasing, window titles, links,
# the clipboard with OSC 52), CR and BS overwrite what was shown.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with every control character but newline and tab written out as `\\xNN`."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def open_client(
    url: str,
    token: str | None,
    *,
    timeout: httpx.Timeout,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """A client of the PersAI at `url`, as the holder of the Perses access `token` (or none:
    a PersAI without authentication)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=timeout, transport=transport)


def submission(
    question: str,
    datasource: str,
    *,
    time_range: dict[str, str] | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """The body of `POST /api/v1/investigations`."""
    body: dict[str, Any] = {"question": question, "datasource": datasource}
    if time_range:
        body["time_range"] = time_range
    if model:
        body["model"] = model
    return body


def error_text(response: httpx.Response) -> str:
    """What an error answer says ("429 rate_limited: ..."), as text a terminal shows as it is;
    `HTTP <status>` when it is not PersAI's error body."""
    try:
        error = response.json()["error"]
        return printable(f"{response.status_code} {error['type']}: {error['message']}")
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"
