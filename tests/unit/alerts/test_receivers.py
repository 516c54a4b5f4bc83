"""Receiver destinations: only http(s) URLs that parse are accepted, when the file is read."""

from __future__ import annotations

from typing import Any

import pytest

from persai.alerts.receivers import ConfigError, parse

TOKEN_ENV = "PERSAI_TEST_RECEIVER_TOKEN"


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "t" * 32)


def config(url: str) -> dict[str, Any]:
    destination = {"name": "hook", "kind": "slack", "url": url}
    receiver = {"name": "oncall", "token_env": TOKEN_ENV, "datasource": "prom"}
    return {"receivers": [{**receiver, "destinations": [destination]}]}


@pytest.mark.parametrize("url", ["http://[::1/x", "http://", "ftp://hooks.example/x", ""])
def test_a_destination_url_that_does_not_parse_is_refused_when_read(url: str) -> None:
    with pytest.raises(ConfigError, match="must be an http"):
        parse(config(url))


def test_an_http_destination_is_kept_as_a_secret() -> None:
    parsed = parse(config("https://hooks.example/x"))
    (destination,) = parsed.receivers[0].destinations
    assert destination.resolved_url is not None
    assert destination.resolved_url.get_secret_value() == "https://hooks.example/x"
    assert "hooks.example" not in repr(destination)
