"""Credentials: sealing at rest, and the worker's refreshing token source."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from persai.credentials import Credentials, PersesTokens, Sealer, SealError, cookieless_jar
from persai.errors import PersesUnavailable, Unauthenticated
from tests.support.perses import PersesStandin, Tokens

pytestmark = pytest.mark.anyio


@pytest.fixture
def perses() -> Iterator[PersesStandin]:
    standin = PersesStandin(access_ttl_s=5)
    standin.add_user("alice", "alice-password")
    with standin:
        yield standin


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5, cookies=cookieless_jar()) as client:
        yield client


@pytest.fixture
def alice(perses: PersesStandin) -> Tokens:
    return perses.issue_tokens("alice")


def _credentials(tokens: Tokens, *, expires_in_s: float | None = None) -> Credentials:
    credentials = Credentials.from_tokens(tokens.access_token, tokens.refresh_token)
    if expires_in_s is None:
        return credentials
    expires_at = datetime.now(UTC) + timedelta(seconds=expires_in_s)
    return credentials.model_copy(update={"expires_at": expires_at})


# Sealing ------------------------------------------------------------------------------------


def test_seal_and_open_round_trip(alice: Tokens) -> None:
    sealer = Sealer(SecretStr("a secret key"))
    credentials = _credentials(alice)

    sealed = sealer.seal(credentials, context="job-1")

    assert sealer.open(sealed, context="job-1") == credentials
    assert alice.access_token not in sealed
    assert alice.refresh_token not in sealed
    assert alice.access_token.split(".")[1] not in sealed


def test_sealing_twice_gives_different_ciphertexts(alice: Tokens) -> None:
    sealer = Sealer("a secret key")
    credentials = _credentials(alice)

    assert sealer.seal(credentials) != sealer.seal(credentials)


def test_credentials_without_refresh_token_round_trip(alice: Tokens) -> None:
    sealer = Sealer("a secret key")
    credentials = Credentials.from_tokens(alice.access_token)

    opened = sealer.open(sealer.seal(credentials))

    assert opened.refresh_token is None
    assert opened.expires_at == credentials.expires_at
    assert opened.expires_at.tzinfo == UTC


def _flip_one_byte(sealed: str) -> str:
    version, body = sealed.split(".")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[20] ^= 0x01
    return f"{version}.{base64.urlsafe_b64encode(bytes(raw)).decode()}"


@pytest.mark.parametrize(
    "tamper",
    [_flip_one_byte, lambda s: s[:-8], lambda s: "v1.not-base64!", lambda s: "v2" + s[2:]],
    ids=["flipped byte", "truncated", "garbage", "unknown version"],
)
def test_tampering_is_detected(alice: Tokens, tamper: object) -> None:
    sealer = Sealer("a secret key")
    sealed = sealer.seal(_credentials(alice))
    assert callable(tamper)

    with pytest.raises(SealError) as error:
        sealer.open(tamper(sealed))
    assert alice.access_token not in error.value.message


def test_wrong_key_cannot_open(alice: Tokens) -> None:
    sealed = Sealer("the right key").seal(_credentials(alice))

    with pytest.raises(SealError, match="another key"):
        Sealer("the wrong key").open(sealed)


def test_wrong_context_cannot_open(alice: Tokens) -> None:
    sealer = Sealer("a secret key")
    sealed = sealer.seal(_credentials(alice), context="job-1")

    with pytest.raises(SealError):
        sealer.open(sealed, context="job-2")


def test_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="PERSAI_SECRET_KEY"):
        Sealer(SecretStr(""))


def test_credentials_never_show_tokens(alice: Tokens) -> None:
    credentials = _credentials(alice)

    assert alice.access_token not in repr(credentials)
    assert alice.refresh_token not in str(credentials)
    assert credentials.expires_at.tzinfo == UTC


# Refreshing -----------------------------------------------------------------------------------


async def test_fresh_token_is_used_as_is(
    http: httpx.AsyncClient, perses: PersesStandin, alice: Tokens
) -> None:
    tokens = PersesTokens(_credentials(alice), http, perses.base_url)

    assert await tokens.bearer() == alice.access_token
    assert perses.count("refresh") == 0


async def test_five_second_token_is_refreshed_before_it_expires(
    http: httpx.AsyncClient, perses: PersesStandin, caplog: pytest.LogCaptureFixture
) -> None:
    # httpcore's DEBUG records carry raw headers; persai.logging caps it at WARNING.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="persai")
    login = await http.post(
        f"{perses.base_url}/api/auth/providers/native/login",
        json={"login": "alice", "password": "alice-password"},
    )
    body = login.json()
    credentials = Credentials.from_tokens(body["access_token"], body["refresh_token"])
    refreshed: list[Credentials] = []

    async def on_refresh(new: Credentials) -> None:
        refreshed.append(new)

    tokens = PersesTokens(credentials, http, perses.base_url, on_refresh=on_refresh)
    assert await tokens.bearer() == body["access_token"]

    # A 5 s token is refreshed in its last second (a fifth of its lifetime), before it expires.
    await asyncio.sleep(max(0.0, credentials.seconds_left() - 0.8))
    bearer = await tokens.bearer()

    assert time.time() < credentials.expires_at.timestamp()
    assert bearer != body["access_token"]
    assert perses.count("refresh") == 1
    assert [c.access_token.get_secret_value() for c in refreshed] == [bearer]
    assert tokens.credentials.expires_at > credentials.expires_at
    whoami = await http.get(
        f"{perses.base_url}/api/v1/user/whoami", headers={"Authorization": f"Bearer {bearer}"}
    )
    assert whoami.json()["metadata"]["name"] == "alice"
    assert "refreshed a Perses access token" in caplog.text
    for secret in (body["access_token"], body["refresh_token"], bearer):
        assert secret not in caplog.text


async def test_concurrent_callers_share_one_refresh(
    http: httpx.AsyncClient, perses: PersesStandin, alice: Tokens
) -> None:
    calls: list[Credentials] = []

    async def on_refresh(new: Credentials) -> None:
        calls.append(new)

    # Stale credentials: a long-lived token recorded as expiring in 0.5 s.
    long_lived = perses.issue_tokens("alice", access_ttl_s=900)
    tokens = PersesTokens(
        _credentials(long_lived, expires_in_s=0.5), http, perses.base_url, on_refresh=on_refresh
    )

    bearers = await asyncio.gather(*(tokens.bearer() for _ in range(50)))

    assert perses.count("refresh") == 1
    assert len(calls) == 1
    assert set(bearers) == {calls[0].access_token.get_secret_value()}


async def test_forced_refresh_after_a_401_happens_once(
    http: httpx.AsyncClient, perses: PersesStandin, alice: Tokens
) -> None:
    tokens = PersesTokens(_credentials(alice), http, perses.base_url)

    await asyncio.gather(*(tokens.refresh() for _ in range(10)))

    assert perses.count("refresh") == 1


async def test_refused_refresh_token_is_unauthenticated(
    http: httpx.AsyncClient, perses: PersesStandin, alice: Tokens
) -> None:
    wrong = perses.sign({"sub": "alice", "exp": int(time.time()) + 600})  # the access key
    credentials = Credentials.from_tokens(alice.access_token, wrong)
    tokens = PersesTokens(
        credentials.model_copy(update={"expires_at": datetime.now(UTC)}), http, perses.base_url
    )

    with pytest.raises(Unauthenticated, match="did not accept the refresh token") as error:
        await tokens.bearer()
    assert wrong not in error.value.message


async def test_perses_down_during_refresh_is_503(
    http: httpx.AsyncClient, perses: PersesStandin, alice: Tokens
) -> None:
    tokens = PersesTokens(_credentials(alice, expires_in_s=0.1), http, perses.base_url)
    perses.stop()

    with pytest.raises(PersesUnavailable, match="cannot be reached"):
        await tokens.bearer()

    perses.start()
    assert await tokens.bearer() != ""
    assert perses.count("refresh") == 1


async def test_expired_token_without_refresh_token_is_unauthenticated(
    http: httpx.AsyncClient, perses: PersesStandin, alice: Tokens
) -> None:
    credentials = Credentials(
        access_token=SecretStr(alice.access_token), expires_at=datetime.now(UTC)
    )
    tokens = PersesTokens(credentials, http, perses.base_url)

    with pytest.raises(Unauthenticated, match="no refresh token"):
        await tokens.bearer()
    assert perses.count("refresh") == 0
