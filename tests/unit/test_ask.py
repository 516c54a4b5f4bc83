"""`persai ask` in a terminal: what the server sends (the model's text, label values from the
data, error messages) is shown as text; no control sequence in it reaches the terminal."""

import io
import json
import re

import httpx
import pytest

from persai.ask import BOLD, CYAN, DIM, GREEN, RED, RESET, Asker, Console
from persai.client import printable

# What a label value or a model answer could carry: a CSI (clear the screen, move the cursor),
# an OSC (set the window title; write the clipboard with OSC 52), a bell, a backspace, a
# carriage return, a raw C1 CSI, DEL.
HOSTILE = "\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b]52;c;ZWNobyBoaQ==\x07x\x08\ry\x9b31mz\x7f"
SHOWN = "\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07\\x1b]52;c;ZWNobyBoaQ==\\x07x\\x08\\x0dy\\x9b31mz\\x7f"
# every control character but newline and tab (C0, DEL, C1)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def sse(*events: tuple[str, dict[str, object]]) -> bytes:
    frames = [
        f"id: 1-{index}\nevent: {name}\ndata: {json.dumps(data)}\n\n"
        for index, (name, data) in enumerate(events)
    ]
    return "".join(frames).encode()


def server(events: bytes, *, submit_status: int = 202) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            if submit_status != 202:
                error = {"type": "invalid_request", "message": f"bad datasource {HOSTILE}"}
                return httpx.Response(submit_status, json={"error": error})
            return httpx.Response(202, json={"id": "j1", "status": "queued"})
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, content=events, headers=headers)

    return httpx.MockTransport(handle)


def follow(events: bytes, *, colour: bool) -> str:
    out = io.StringIO()
    console = Console(out, colour=colour)
    with httpx.Client(base_url="http://persai", transport=server(events)) as client:
        asker = Asker(client, console)
        status = asker.follow(asker.submit("why?", "/proxy/globaldatasources/prom", None, None))
    assert status == "succeeded"
    return out.getvalue()


EVENTS = sse(
    ("status", {"status": "running", "reason": HOSTILE}),
    (
        "tool_call",
        {"tool": "execute_range_query", "arguments": {HOSTILE: f'up{{job="{HOSTILE}"}}'}},
    ),
    ("tool_result", {"status": "ok", "output": f'job="{HOSTILE}" spiked', "duration_ms": 3}),
    ("message_delta", {"text": HOSTILE}),
    ("answer", {"text": f"# Cause {HOSTILE}\n\nThe job `{HOSTILE}` is slow.\tIndeed.\n"}),
    ("error", {"message": HOSTILE}),
    ("done", {"status": "succeeded"}),
)


@pytest.mark.parametrize("colour", [False, True])
def test_control_sequences_from_the_server_are_shown_not_obeyed(colour: bool) -> None:
    shown = follow(EVENTS, colour=colour)

    without_ours = shown
    for style in (BOLD, DIM, CYAN, RED, GREEN, RESET):  # the console's own colours
        without_ours = without_ours.replace(style, "")
    # the progress line is rewritten in place: the one carriage return is the console's own
    assert without_ours.count("\r") == 1
    assert _CONTROL.findall(without_ours.replace("\r", "")) == []
    # what was sent is still there to read, with each control character written out
    # in the status reason, the argument's name and value, the output, the answer's heading and
    # code, and the error (a carriage return starts a new line in the Markdown and the output)
    assert shown.count("\\x1b]52;c;ZWNobyBoaQ==\\x07") == 7
    assert f"· running ({SHOWN})" in shown
    assert f"error: {SHOWN}" in shown
    assert "\tIndeed." in shown  # tabs and newlines are text
    assert (CYAN in shown) is colour  # the console's own colours only on a terminal


def test_an_error_message_from_the_server_is_shown_as_text() -> None:
    refusing = server(b"", submit_status=400)
    with (
        httpx.Client(base_url="http://persai", transport=refusing) as client,
        pytest.raises(SystemExit) as exited,
    ):
        Asker(client, Console(io.StringIO(), colour=True)).submit("q", "x", None, None)

    message = str(exited.value)  # what Python prints to the terminal as the command exits
    assert message == f"persai ask: 400 invalid_request: bad datasource {SHOWN}"
    assert _CONTROL.findall(message) == []


def test_printable_keeps_text_and_writes_out_controls() -> None:
    assert printable("über\tlatency\n→ 5 ms") == "über\tlatency\n→ 5 ms"
    assert printable("\x00\x1b\x7f\x85\x9f") == "\\x00\\x1b\\x7f\\x85\\x9f"
