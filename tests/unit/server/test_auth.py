"""Authenticator: from a request's cookies or bearer token to a Principal."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import fakeredis
import httpx
import pytest
from starlette.requests import Request

from persai.config import Settings
from persai.credentials import Sealer, cookieless_jar
from persai.errors import InvalidRequest, Unauthenticated
from persai.server.auth import ANONYMOUS, Authenticator, Principal
from persai.server.token_validator import TokenValidator
from tests.support.perses import PersesStandin, Tokens, forge_token

SEALER = Sealer("a test key of at least thirty-two bytes")

pytestmark = pytest.mark.anyio

COOKIES = ("jwtPayload", "jwtSignature", "jwtRefreshToken")


@pytest.fixture
async def authenticator(perses: PersesStandin) -> AsyncIterator[Authenticator]:
    redis = fakeredis.FakeAsyncRedis()
    async with httpx.AsyncClient(timeout=5, cookies=cookieless_jar()) as http:
        validator = TokenValidator(redis, http, perses.base_url, cache_ttl_s=3600, sealer=SEALER)
        yield Authenticator(Settings(auth=True), validator)
    await redis.aclose()


@pytest.fixture
def alice(perses: PersesStandin) -> Tokens:
    return perses.issue_tokens("alice")


def _request(*, cookies: dict[str, str] | None = None, authorization: str | None = None) -> Request:
    headers = []
    if cookies:
        headers.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()))
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


async def test_auth_off_makes_everyone_anonymous_without_asking_perses(
    perses: PersesStandin, alice: Tokens
) -> None:
    authenticator = Authenticator(Settings(auth=False), None)

    assert await authenticator.authenticate(_request()) is ANONYMOUS
    assert await authenticator.authenticate(_request(cookies=alice.cookies)) is ANONYMOUS
    assert Principal(user="anonymous", credentials=None) == ANONYMOUS
    assert perses.count("refresh") + perses.count("whoami") == 0


def test_auth_on_needs_a_validator() -> None:
    with pytest.raises(ValueError, match="no TokenValidator"):
        Authenticator(Settings(auth=True), None)


async def test_three_cookies_give_the_user_and_forwardable_credentials(
    authenticator: Authenticator, alice: Tokens
) -> None:
    principal = await authenticator.authenticate(_request(cookies=alice.cookies))

    assert principal.user == "alice"
    assert principal.credentials is not None
    assert principal.credentials.access_token.get_secret_value() == alice.access_token
    assert principal.credentials.refresh_token is not None
    assert principal.credentials.refresh_token.get_secret_value() == alice.refresh_token
    assert principal.credentials.seconds_left() > 800
    assert alice.access_token not in repr(principal)


async def test_bearer_token_gives_the_user_and_no_refresh_token(
    authenticator: Authenticator, perses: PersesStandin, alice: Tokens
) -> None:
    principal = await authenticator.authenticate(
        _request(authorization=f"Bearer {alice.access_token}")
    )

    assert principal.user == "alice"
    assert principal.credentials is not None
    assert principal.credentials.access_token.get_secret_value() == alice.access_token
    assert principal.credentials.refresh_token is None
    assert perses.count("whoami") == 1


async def test_no_credentials_is_unauthenticated(authenticator: Authenticator) -> None:
    with pytest.raises(Unauthenticated, match="not signed in") as error:
        await authenticator.authenticate(_request())
    assert error.value.status_code == 401


@pytest.mark.parametrize(
    "present",
    [("jwtPayload",), ("jwtSignature",), ("jwtRefreshToken",), ("jwtPayload", "jwtSignature"),
     ("jwtPayload", "jwtRefreshToken"), ("jwtSignature", "jwtRefreshToken")],
)  # fmt: skip
async def test_only_some_cookies_names_the_missing_ones(
    authenticator: Authenticator, perses: PersesStandin, alice: Tokens, present: tuple[str, ...]
) -> None:
    cookies = {name: alice.cookies[name] for name in present}

    with pytest.raises(Unauthenticated) as error:
        await authenticator.authenticate(_request(cookies=cookies))

    missing = [name for name in COOKIES if name not in present]
    assert error.value.message.endswith(", ".join(missing))
    assert perses.count("refresh") == 0


async def test_whole_token_in_the_payload_cookie_is_refused(
    authenticator: Authenticator, alice: Tokens
) -> None:
    cookies = {**alice.cookies, "jwtPayload": alice.access_token}

    with pytest.raises(Unauthenticated, match=r"must be header\.payload, not 3 parts") as error:
        await authenticator.authenticate(_request(cookies=cookies))
    assert alice.access_token not in error.value.message


async def test_signature_cookie_with_dots_is_refused(
    authenticator: Authenticator, alice: Tokens
) -> None:
    cookies = {**alice.cookies, "jwtSignature": "a.b"}

    with pytest.raises(Unauthenticated, match="single signature part"):
        await authenticator.authenticate(_request(cookies=cookies))


async def test_malformed_cookie_token_is_refused(
    authenticator: Authenticator, alice: Tokens
) -> None:
    none_alg = forge_token({"sub": "alice", "exp": time.time() + 60}, header={"alg": "none"})
    header_payload = none_alg.rsplit(".", 1)[0]
    cookies = {**alice.cookies, "jwtPayload": header_payload}

    with pytest.raises(Unauthenticated, match="HS512"):
        await authenticator.authenticate(_request(cookies=cookies))


async def test_payload_cookie_naming_another_user_is_refused(
    authenticator: Authenticator, perses: PersesStandin
) -> None:
    bob = perses.issue_tokens("bob")
    alice_payload = forge_token({"sub": "alice", "exp": time.time() + 600})
    header_payload, signature = alice_payload.rsplit(".", 1)
    cookies = {**bob.cookies, "jwtPayload": header_payload, "jwtSignature": signature}

    with pytest.raises(Unauthenticated, match="names another user"):
        await authenticator.authenticate(_request(cookies=cookies))


@pytest.mark.parametrize("cookie", COOKIES)
async def test_oversized_cookie_is_a_bad_request(
    authenticator: Authenticator, perses: PersesStandin, alice: Tokens, cookie: str
) -> None:
    cookies = {**alice.cookies, cookie: "a" * 9000}

    with pytest.raises(InvalidRequest, match=f"the {cookie} cookie is larger than 8 KiB") as error:
        await authenticator.authenticate(_request(cookies=cookies))
    assert error.value.status_code == 400
    assert perses.count("refresh") == 0


async def test_oversized_authorization_header_is_a_bad_request(
    authenticator: Authenticator,
) -> None:
    with pytest.raises(InvalidRequest, match="Authorization header is larger than 8 KiB"):
        await authenticator.authenticate(_request(authorization="Bearer " + "a" * 9000))


@pytest.mark.parametrize("authorization", ["", "Bearer", "Bearer  ", "Basic YWxpY2U6cHc="])
async def test_authorization_other_than_bearer_is_unauthenticated(
    authenticator: Authenticator, authorization: str
) -> None:
    with pytest.raises(Unauthenticated, match="must be 'Bearer <Perses access token>'"):
        await authenticator.authenticate(_request(authorization=authorization))


async def test_rejected_refresh_cookie_is_unauthenticated(
    authenticator: Authenticator, perses: PersesStandin, alice: Tokens
) -> None:
    wrong_refresh = perses.sign({"sub": "alice", "exp": int(time.time()) + 600})
    cookies = {**alice.cookies, "jwtRefreshToken": wrong_refresh}

    with pytest.raises(Unauthenticated, match="did not accept the refresh token"):
        await authenticator.authenticate(_request(cookies=cookies))
