"""`persai ask`: a question from a terminal, answered live by a running PersAI.

Submits the investigation, follows its event stream (resuming where it left off if the
connection drops), shows each tool call as it happens and the answer as it is written. Ctrl-C
offers to cancel the investigation.

What the server sends (the model's text, label values, error messages) is shown as text: a
control character in it is written out (`\\x1b`), never sent to the terminal to act on.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from persai.client import INVESTIGATIONS, error_text, open_client, printable, submission

BOLD, DIM, CYAN, RED, GREEN, RESET = (
    "\033[1m",
    "\033[2m",
    "\033[36m",
    "\033[31m",
    "\033[32m",
    "\033[0m",
)


@dataclass
class Console:
    """Where output goes; colours only on a terminal.

    Every text is written as text (`printable`): only the console's own styles and line
    starts reach the terminal as control sequences.
    """

    out: TextIO
    colour: bool

    def write(self, text: str, style: str = "", *, line_start: bool = False) -> None:
        """Write `text`; `line_start`: over the current line (a carriage return first)."""
        text = printable(text)
        if self.colour and style:
            text = f"{style}{text}{RESET}"
        self.out.write(f"\r{text}" if line_start else text)
        self.out.flush()


def render_markdown(text: str, console: Console) -> None:
    """A light rendering of Markdown for a terminal: headings bold, code cyan."""
    for line in text.splitlines():
        if line.startswith("#"):
            console.write(line.lstrip("#").strip() + "\n", BOLD)
            continue
        for part in re.split(r"(`[^`]+`)", line):
            console.write(
                part.strip("`") if part.startswith("`") else part,
                CYAN if part.startswith("`") else "",
            )
        console.write("\n")


def _events(response: httpx.Response) -> Iterator[tuple[str | None, str, dict[str, Any]]]:
    """(id, event, data) of an SSE response, comments (heartbeats) skipped."""
    event_id, name, data = None, "message", ""
    for line in response.iter_lines():
        if not line:
            if data:
                yield event_id, name, json.loads(data)
            event_id, name, data = None, "message", ""
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "id":
                event_id = value
            elif field == "event":
                name = value
            elif field == "data":
                data += value


class Asker:
    def __init__(self, client: httpx.Client, console: Console) -> None:
        self.client = client
        self.console = console
        self.last_event: str | None = None
        self.written = 0

    def submit(
        self, question: str, datasource: str, duration: str | None, model: str | None
    ) -> str:
        time_range = {"duration": duration} if duration else None
        body = submission(question, datasource, time_range=time_range, model=model)
        response = self.client.post(INVESTIGATIONS, json=body)
        if response.status_code != 202:
            raise SystemExit(f"persai ask: {error_text(response)}")
        job_id: str = response.json()["id"]
        self.console.write(f"investigation {job_id} queued\n", DIM)
        return job_id

    def follow(self, job_id: str) -> str:
        """Show the events until `done`; returns the final status."""
        while True:
            headers = {"Last-Event-ID": self.last_event} if self.last_event else {}
            try:
                with self.client.stream(
                    "GET", f"{INVESTIGATIONS}/{job_id}/events", headers=headers
                ) as response:
                    if response.status_code != 200:
                        response.read()
                        raise SystemExit(f"persai ask: {error_text(response)}")
                    for event_id, name, data in _events(response):
                        self.last_event = event_id or self.last_event
                        if name == "done":
                            return str(data.get("status"))
                        self.show(name, data)
            except httpx.TransportError:
                self.console.write("(connection lost; resuming)\n", DIM)

    def show(self, name: str, data: dict[str, Any]) -> None:
        handler = getattr(self, f"_on_{name}", None)
        if handler is not None:
            handler(data)

    def _on_status(self, data: dict[str, Any]) -> None:
        reason = f" ({data['reason']})" if data.get("reason") else ""
        self.console.write(f"· {data.get('status')}{reason}\n", DIM)

    def _on_tool_call(self, data: dict[str, Any]) -> None:
        arguments = ", ".join(f"{k}={v!r}" for k, v in data.get("arguments", {}).items())
        self.console.write(f"→ {data.get('tool')}({arguments})\n", CYAN)

    def _on_tool_result(self, data: dict[str, Any]) -> None:
        ok = data.get("status") == "ok"
        lines = (data.get("output") or "").splitlines()
        summary = lines[0] if lines else ""
        mark = "✓" if ok else "✗"
        took = f"{data.get('duration_ms')} ms"
        self.console.write(f"  {mark} {summary} ({took})\n", GREEN if ok else RED)

    def _on_message_delta(self, data: dict[str, Any]) -> None:
        """The answer is being written: show how far it got, then render it whole."""
        self.written += len(data.get("text", ""))
        self.console.write(f"  writing the answer: {self.written} characters", DIM, line_start=True)

    def _on_answer(self, data: dict[str, Any]) -> None:
        self.console.write("\n\n" if self.written else "\n")
        render_markdown(data.get("text", ""), self.console)

    def _on_error(self, data: dict[str, Any]) -> None:
        self.console.write(f"error: {data.get('message')}\n", RED)

    def cancel(self, job_id: str) -> None:
        response = self.client.post(f"{INVESTIGATIONS}/{job_id}/cancel")
        ok = response.status_code == 200
        status = response.json().get("status") if ok else error_text(response)
        self.console.write(f"cancel asked: {status}\n", DIM)


def ask(
    *,
    url: str,
    question: str,
    datasource: str,
    token: str | None,
    duration: str | None = None,
    model: str | None = None,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
) -> int:
    console = Console(stdout, colour=stdout.isatty())
    with open_client(url, token, timeout=httpx.Timeout(10.0, read=60.0)) as client:
        asker = Asker(client, console)
        try:
            job_id = asker.submit(question, datasource, duration, model)
        except httpx.TransportError as exc:
            raise SystemExit(f"persai ask: cannot reach PersAI at {url}: {exc}") from exc
        while True:
            try:
                status = asker.follow(job_id)
                break
            except KeyboardInterrupt:
                console.write("\nCancel the investigation? [y/N] ")
                if stdin.readline().strip().lower() in ("y", "yes"):
                    asker.cancel(job_id)
        console.write(f"\n{status}\n", GREEN if status == "succeeded" else RED)
    return 0 if status == "succeeded" else 1
