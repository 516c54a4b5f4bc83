import json
import logging

import pytest

from persai.logging import bound, redact, setup_logging

ACCESS = "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "text",
    [
        f"token {ACCESS} here",
        f"Authorization: Bearer {ACCESS}",
        "Authorization: Bearer opaque-token-123",
        'refresh_token="opaque-refresh"',
        "api_key=sk-abc123",
    ],
)
def test_secrets_are_redacted(text: str) -> None:
    cleaned = redact(text)
    assert "[redacted]" in cleaned
    for secret in (ACCESS, "opaque-token-123", "opaque-refresh", "sk-abc123"):
        assert secret not in cleaned


def test_json_lines_carry_ids_and_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "json")
    try:
        with bound(request="req-1", job="job-1"):
            logging.getLogger("persai.test").info("calling with Bearer %s", ACCESS)
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    finally:
        logging.getLogger().handlers.clear()
    assert line["request_id"] == "req-1"
    assert line["job_id"] == "job-1"
    assert ACCESS not in json.dumps(line)
    assert line["level"] == "INFO"
