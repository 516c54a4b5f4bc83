"""Settings refuse, at start, configurations that would run but be unsafe or fail every job."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from persai.config import Settings

PERSES = "http://perses.example:8080"
KEY = "k" * 32


@pytest.mark.parametrize("origins", ["*", "https://perses.example.com,*"])
def test_a_wildcard_cors_origin_is_refused(origins: str) -> None:
    with pytest.raises(ValidationError, match=r"PERSAI_CORS_ORIGINS=\* is refused"):
        Settings(cors_origins=origins, auth=False)


@pytest.mark.parametrize("origin", ["perses.example.com", "https://*.example.com", "https://a/b"])
def test_a_cors_entry_that_is_no_origin_is_refused(origin: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin: write scheme://host"):
        Settings(cors_origins=origin, auth=False)


def test_cors_origins_are_compared_as_browsers_send_them() -> None:
    settings = Settings(
        cors_origins="https://perses.example.com/, http://localhost:3000", auth=False
    )
    assert settings.allowed_origins() == ["https://perses.example.com", "http://localhost:3000"]


@pytest.mark.parametrize("key", [None, "", "short", "k" * 31])
def test_authentication_without_a_long_enough_secret_key_is_refused(key: str | None) -> None:
    with pytest.raises(ValidationError, match="PERSAI_SECRET_KEY") as error:
        Settings(perses_api_url=PERSES, secret_key=key)
    message = str(error.value)
    assert "at least 32 bytes" in message
    assert "PERSAI_AUTH=false" in message
    if key:
        assert key not in message  # the key itself is never printed


def test_a_long_enough_key_or_authentication_off_starts() -> None:
    assert Settings(perses_api_url=PERSES, secret_key=KEY).auth
    assert not Settings(perses_api_url=PERSES, auth=False).auth


def test_an_empty_perses_url_means_no_perses() -> None:
    """compose.yaml passes `${PERSES_API_URL:-}`: empty is "not configured", not a bad URL."""
    assert Settings(perses_api_url="", auth=False).perses_api_url is None


def test_the_command_says_what_to_set_and_prints_no_secret() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PERSES_API_URL": PERSES,
        "PERSAI_SECRET_KEY": "too-short-but-secret",
        "OPENAI_API_KEY": "sk-provider-secret",
    }
    run = subprocess.run(
        [sys.executable, "-m", "persai.cli", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode != 0
    assert "PERSAI_SECRET_KEY is 20 bytes long" in run.stderr
    assert "too-short-but-secret" not in run.stderr + run.stdout
    assert "sk-provider-secret" not in run.stderr + run.stdout


def test_compose_asks_for_the_secret_key_instead_of_starting_without_one() -> None:
    compose = yaml.safe_load((Path(__file__).parents[2] / "compose.yaml").read_text())
    environment = compose["x-persai-environment"]

    assert environment["PERSAI_SECRET_KEY"].startswith("${PERSAI_SECRET_KEY:?set PERSAI_SECRET_KEY")
    assert environment["PERSAI_DIRECT_DATASOURCES_WITH_PERSES"].endswith(":-false}")


@pytest.mark.parametrize("url", ["localhost:6379", "http://redis:6379", "6379"])
def test_a_redis_url_that_is_not_one_is_refused_when_read(url: str) -> None:
    with pytest.raises(ValidationError, match="PERSAI_REDIS_URL must be a Redis URL"):
        Settings(redis_url=url)


def test_the_api_and_the_workers_say_once_that_they_need_redis() -> None:
    assert Settings(redis_url="").redis_url is None  # an empty variable is none given
    with pytest.raises(ValueError, match="PERSAI_REDIS_URL is required"):
        Settings(redis_url=None).required_redis_url()
    assert Settings(redis_url="unix:///run/redis.sock").required_redis_url().startswith("unix")
