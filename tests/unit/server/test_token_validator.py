"""TokenValidator against the Perses stand-in, with verdicts cached in fakeredis."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import fakeredis
import httpx
import pytest
import redis.asyncio as aioredis

from persai.credentials import Sealer, cookieless_jar
from persai.errors import PersesUnavailable, StoreUnavailable, Unauthenticated, UpstreamError
from persai.server.token_validator import (
    KEY_PREFIX,
    MAX_TOKEN_BYTES,
    TokenValidator,
    parse_token,
)
from tests.support.perses import PersesStandin, Tokens, forge_token

SEALER = Sealer("a test key of at least thirty-two bytes")

pytestmark = pytest.mark.anyio


@pytest.fixture
def redis_server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
async def redis(redis_server: fakeredis.FakeServer) -> AsyncIterator[aioredis.Redis]:
    client = fakeredis.FakeAsyncRedis(server=redis_server)
    yield client
    await client.aclose()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


@pytest.fixture
def validator(
    redis: aioredis.Redis, http: httpx.AsyncClient, perses: PersesStandin
) -> TokenValidator:
    return TokenValidator(redis, http, perses.base_url, cache_ttl_s=3600, sealer=SEALER)


@pytest.fixture
def alice(perses: PersesStandin) -> Tokens:
    return perses.issue_tokens("alice")


async def test_cookie_session_is_trusted_for_the_user_perses_confirms(
    validator: TokenValidator, perses: PersesStandin, alice: Tokens
) -> None:
    verdict = await validator.validate_cookie(alice.access_token, alice.refresh_token)

    assert verdict.user == "alice"
    exp = parse_token(alice.access_token).expires_at
    assert verdict.expires_at.timestamp() == exp
    assert perses.count("refresh") == 1


async def test_bearer_token_is_checked_with_whoami(
    validator: TokenValidator, perses: PersesStandin, alice: Tokens
) -> None:
    verdict = await validator.validate_bearer(alice.access_token)

    assert verdict.user == "alice"
    assert (perses.count("whoami"), perses.count("refresh")) == (1, 0)


async def test_bearer_token_perses_rejects_is_unauthenticated(
    validator: TokenValidator, perses: PersesStandin
) -> None:
    # Well-formed, unexpired, but not signed by this Perses.
    forged = forge_token({"sub": "alice", "exp": time.time() + 600})

    with pytest.raises(Unauthenticated, match="did not accept the access token"):
        await validator.validate_bearer(forged)
    assert perses.count("whoami") == 1


def _bad_tokens() -> dict[str, tuple[str, str]]:
    # built when tests are collected, which can be many minutes before this test runs: a day
    # ahead stays in the future, and `nbf` far beyond the 60 s clock-skew tolerance
    future = time.time() + 86_400
    good = forge_token({"sub": "alice", "exp": future})
    head, body, sig = good.split(".")
    return {
        "two segments": (f"{head}.{body}", "3 dot-separated parts, not 2"),
        "four segments": (f"{good}.{sig}", "3 dot-separated parts, not 4"),
        "bad base64": (f"{head}.{body[:-2]}*!.{sig}", "payload is not base64url"),
        "non-JSON payload": (forge_token("not json {"), "payload is not JSON"),
        "JSON list payload": (forge_token('["alice"]'), "payload is not a JSON object"),
        "alg none": (
            forge_token({"sub": "alice", "exp": future}, header={"alg": "none"}, signature=b""),
            "must be signed with HS512",
        ),
        "alg HS256": (
            forge_token({"sub": "alice", "exp": future}, header={"alg": "HS256"}),
            "must be signed with HS512",
        ),
        "short signature": (
            forge_token({"sub": "alice", "exp": future}, signature=b"x" * 32),
            "does not carry an HS512 signature",
        ),
        "expired": (forge_token({"sub": "alice", "exp": time.time() - 1}), "has expired"),
        "no exp": (forge_token({"sub": "alice"}), "has no expiry"),
        "no sub": (forge_token({"exp": future}), "names no user"),
        "nbf in the future": (
            forge_token({"sub": "alice", "exp": future, "nbf": future - 3600}),
            "not valid yet",
        ),
        "oversized": (forge_token({"sub": "alice", "exp": future, "pad": "x" * 9000}), "longer"),
    }


@pytest.mark.parametrize(("token", "message"), _bad_tokens().values(), ids=_bad_tokens().keys())
async def test_malformed_tokens_are_refused_before_asking_perses(
    validator: TokenValidator, perses: PersesStandin, alice: Tokens, token: str, message: str
) -> None:
    with pytest.raises(Unauthenticated, match=message) as refresh_error:
        await validator.validate_cookie(alice.access_token, token)
    with pytest.raises(Unauthenticated, match=message) as bearer_error:
        await validator.validate_bearer(token)
    errors = [refresh_error.value, bearer_error.value]
    if message != "has expired":  # an access cookie outlives its token (the next test)
        with pytest.raises(Unauthenticated, match=message) as cookie_error:
            await validator.validate_cookie(token, alice.refresh_token)
        errors.append(cookie_error.value)

    for error in errors:
        assert token not in error.message
        assert all(len(part) < 8 or part not in error.message for part in token.split("."))
    assert perses.count("refresh") + perses.count("whoami") == 0


async def test_an_expired_access_cookie_beside_a_valid_refresh_token_is_refreshed(
    validator: TokenValidator, perses: PersesStandin
) -> None:
    # Perses keeps the access cookies as long as the refresh token (internal/api/crypto/jwt.go):
    # the browser sends an access token that expired beside a refresh token that has not.
    stale = perses.issue_tokens("alice", access_ttl_s=-60)
    verdict = await validator.validate_cookie(stale.access_token, stale.refresh_token)

    assert verdict.user == "alice"
    forwarded = verdict.access_token.get_secret_value()
    assert forwarded != stale.access_token  # the one Perses returned, never the client's
    assert perses.user_of(forwarded) == "alice"  # signed by Perses, valid now
    assert verdict.expires_at.timestamp() == parse_token(forwarded).expires_at
    assert perses.count("refresh") == 1


async def test_signatures_beside_one_refresh_token_share_one_perses_call_and_cache_entry(
    validator: TokenValidator, perses: PersesStandin, redis: aioredis.Redis, alice: Tokens
) -> None:
    head, body, _ = alice.access_token.split(".")
    for n in range(20):
        forged = f"{head}.{body}.{forge_token({}, signature=bytes([n]) * 64).split('.')[2]}"
        verdict = await validator.validate_cookie(forged, alice.refresh_token)
        assert verdict.access_token.get_secret_value() != forged
    assert perses.count("refresh") == 1
    assert len([k async for k in redis.scan_iter(KEY_PREFIX + "*")]) == 1


async def test_refresh_token_perses_refuses_is_unauthenticated_and_remembered(
    validator: TokenValidator, perses: PersesStandin, alice: Tokens
) -> None:
    # Signed with the access key instead of the refresh key: Perses answers 400.
    wrong_refresh = perses.sign({"sub": "alice", "exp": int(time.time()) + 600})

    for _ in range(5):
        with pytest.raises(Unauthenticated, match="did not accept the refresh token"):
            await validator.validate_cookie(alice.access_token, wrong_refresh)
    assert perses.count("refresh") == 1


async def test_access_payload_naming_another_user_is_refused(
    validator: TokenValidator, perses: PersesStandin
) -> None:
    bob = perses.issue_tokens("bob")
    # Bob's valid refresh token, with an access token whose payload says "alice".
    alice_payload = forge_token({"sub": "alice", "exp": time.time() + 600})

    with pytest.raises(Unauthenticated, match="names another user"):
        await validator.validate_cookie(alice_payload, bob.refresh_token)
    assert perses.count("refresh") == 1


async def test_a_kept_cookie_never_speaks_for_another_user(
    redis: aioredis.Redis, perses: PersesStandin, alice: Tokens
) -> None:
    # A client with a normal cookie jar: the refresh for alice leaves her session cookies in it,
    # and Perses prefers cookies to the Authorization header of bob's whoami.
    async with httpx.AsyncClient(timeout=5) as keeps_cookies:
        validator = TokenValidator(
            redis, keeps_cookies, perses.base_url, cache_ttl_s=3600, sealer=SEALER
        )
        await validator.validate_cookie(alice.access_token, alice.refresh_token)
        assert "jwtPayload" in keeps_cookies.cookies

        verdict = await validator.validate_bearer(perses.issue_tokens("bob").access_token)

    assert verdict.user == "bob"


async def test_a_perses_older_than_053_is_named_for_bearer_clients(
    redis: aioredis.Redis, http: httpx.AsyncClient
) -> None:
    with PersesStandin(version="0.52.0") as old:
        old.add_user("alice", "alice-password")
        validator = TokenValidator(redis, http, old.base_url, cache_ttl_s=3600, sealer=SEALER)
        with pytest.raises(UpstreamError, match=r"older than PersAI supports \(Perses 0\.54"):
            await validator.validate_bearer(old.issue_tokens("alice").access_token)


async def test_kubernetes_authentication_tells_cookie_clients_to_send_a_bearer_token(
    redis: aioredis.Redis, http: httpx.AsyncClient
) -> None:
    with PersesStandin(kubernetes_auth=True) as delegated:
        delegated.add_user("alice", "alice-password")
        tokens = delegated.issue_tokens("alice")
        validator = TokenValidator(redis, http, delegated.base_url, cache_ttl_s=60, sealer=SEALER)
        with pytest.raises(Unauthenticated, match=r"Kubernetes authentication.*Bearer"):
            await validator.validate_cookie(tokens.access_token, tokens.refresh_token)


async def test_perses_down_is_503_and_recovers_when_it_returns(
    validator: TokenValidator, perses: PersesStandin, alice: Tokens
) -> None:
    perses.stop()
    with pytest.raises(PersesUnavailable, match="cannot be reached"):
        await validator.validate_cookie(alice.access_token, alice.refresh_token)

    perses.start()
    verdict = await validator.validate_cookie(alice.access_token, alice.refresh_token)
    assert verdict.user == "alice"


async def test_perses_5xx_is_503_and_not_cached(
    validator: TokenValidator, perses: PersesStandin, alice: Tokens
) -> None:
    perses.fail_status = 503
    with pytest.raises(PersesUnavailable, match="HTTP 503"):
        await validator.validate_bearer(alice.access_token)

    perses.fail_status = None
    assert (await validator.validate_bearer(alice.access_token)).user == "alice"
    assert perses.count("whoami") == 2


async def test_redis_down_is_503(
    validator: TokenValidator, redis_server: fakeredis.FakeServer, alice: Tokens
) -> None:
    redis_server.connected = False
    with pytest.raises(StoreUnavailable, match="Redis is unavailable"):
        await validator.validate_bearer(alice.access_token)


async def test_hundred_requests_make_one_perses_call(
    validator: TokenValidator, perses: PersesStandin, alice: Tokens
) -> None:
    for _ in range(100):
        verdict = await validator.validate_cookie(alice.access_token, alice.refresh_token)
        assert verdict.user == "alice"
    for _ in range(100):
        assert (await validator.validate_bearer(alice.access_token)).user == "alice"

    assert (perses.count("refresh"), perses.count("whoami")) == (1, 1)


async def test_hundred_concurrent_requests_make_one_perses_call(
    validator: TokenValidator, perses: PersesStandin, alice: Tokens
) -> None:
    verdicts = await asyncio.gather(
        *(validator.validate_cookie(alice.access_token, alice.refresh_token) for _ in range(100))
    )

    assert {v.user for v in verdicts} == {"alice"}
    assert perses.count("refresh") == 1


async def test_concurrent_requests_in_two_processes_make_one_perses_call(
    redis_server: fakeredis.FakeServer,
    http: httpx.AsyncClient,
    perses: PersesStandin,
    alice: Tokens,
) -> None:
    # Two validators with their own Redis connections stand for two API processes.
    redis_a = fakeredis.FakeAsyncRedis(server=redis_server)
    redis_b = fakeredis.FakeAsyncRedis(server=redis_server)
    a = TokenValidator(redis_a, http, perses.base_url, cache_ttl_s=3600, sealer=SEALER)
    b = TokenValidator(redis_b, http, perses.base_url, cache_ttl_s=3600, sealer=SEALER)

    verdicts = await asyncio.gather(
        *(v.validate_bearer(alice.access_token) for _ in range(50) for v in (a, b))
    )

    assert {v.user for v in verdicts} == {"alice"}
    assert perses.count("whoami") == 1
    await redis_a.aclose()
    await redis_b.aclose()


async def test_lock_left_by_a_dead_process_expires_and_the_next_one_asks(
    validator: TokenValidator, redis: aioredis.Redis, perses: PersesStandin, alice: Tokens
) -> None:
    await validator.validate_bearer(alice.access_token)  # learn the key for this token
    (key,) = [k async for k in redis.scan_iter(f"{KEY_PREFIX}*")]
    await redis.delete(key)
    validator._recent.clear()  # as a process that never saw the token
    await redis.set(key + b":lock", "dead-holder", px=300)
    began = time.monotonic()

    verdict = await validator.validate_bearer(alice.access_token)

    assert verdict.user == "alice"
    assert time.monotonic() - began >= 0.25
    assert perses.count("whoami") == 2


async def test_redis_holds_hashes_and_verdicts_never_tokens(
    validator: TokenValidator, redis: aioredis.Redis, perses: PersesStandin, alice: Tokens
) -> None:
    await validator.validate_cookie(alice.access_token, alice.refresh_token)
    await validator.validate_bearer(alice.access_token)
    with pytest.raises(Unauthenticated):
        await validator.validate_bearer(forge_token({"sub": "x", "exp": time.time() + 60}))

    dump = b""
    keys = [key async for key in redis.scan_iter("*")]
    for key in keys:
        dump += key + b"\n" + (await redis.get(key) or b"") + b"\n"
    assert len(keys) == 3
    assert all(key.startswith(KEY_PREFIX.encode()) for key in keys)
    for secret in (alice.access_token, alice.refresh_token, *alice.cookies.values()):
        assert secret.encode() not in dump
    assert b'"user": "alice"' in dump


async def test_verdict_lives_no_longer_than_the_token(
    redis: aioredis.Redis, http: httpx.AsyncClient, perses: PersesStandin
) -> None:
    validator = TokenValidator(redis, http, perses.base_url, cache_ttl_s=3600, sealer=SEALER)
    short = perses.issue_tokens("alice", access_ttl_s=5)

    await validator.validate_bearer(short.access_token)

    (key,) = [k async for k in redis.scan_iter(f"{KEY_PREFIX}*")]
    assert 0 < await redis.pttl(key) <= 5000


async def test_verdict_lives_no_longer_than_the_cache_ttl(
    redis: aioredis.Redis, perses: PersesStandin, alice: Tokens
) -> None:
    async with httpx.AsyncClient(timeout=5, cookies=cookieless_jar()) as http:
        validator = TokenValidator(redis, http, perses.base_url, cache_ttl_s=30, sealer=SEALER)
        await validator.validate_cookie(alice.access_token, alice.refresh_token)

    (key,) = [k async for k in redis.scan_iter(f"{KEY_PREFIX}*")]
    assert 25_000 < await redis.pttl(key) <= 30_000


async def test_tokens_never_reach_the_logs(
    validator: TokenValidator,
    perses: PersesStandin,
    alice: Tokens,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # httpcore's DEBUG records carry raw headers; persai.logging caps it at WARNING.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="persai")
    bob = perses.issue_tokens("bob")

    await validator.validate_cookie(alice.access_token, alice.refresh_token)
    await validator.validate_bearer(alice.access_token)
    with pytest.raises(Unauthenticated):  # logged as a warning
        await validator.validate_cookie(alice.access_token, bob.refresh_token)
    perses.stop()
    with pytest.raises(PersesUnavailable):
        await validator.validate_bearer(bob.access_token)

    assert "another user" in caplog.text
    for tokens in (alice, bob):
        for secret in (tokens.access_token, tokens.refresh_token, *tokens.cookies.values()):
            assert secret not in caplog.text


def _raw_token(header: bytes, payload: bytes) -> str:
    """A JWT-shaped token of any bytes (forge_token takes JSON-able values only)."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{b64(header)}.{b64(payload)}.{b64(bytes(64))}"


def _hostile_tokens() -> dict[str, tuple[str, str]]:
    future = int(time.time()) + 86_400
    head = b'{"alg":"HS512","typ":"JWT"}'
    good = f'{{"sub":"alice","exp":{future}'.encode()
    return {
        # json.loads raised RecursionError: a 500
        "header nested 3,000 deep": (
            _raw_token(b'{"alg":"HS512","x":' + b"[" * 3000, good + b"}"),
            "header is not JSON",
        ),
        "payload nested 3,000 deep": (
            _raw_token(head, good + b',"x":' + b"[" * 3000),
            "payload is not JSON",
        ),
        "closed nesting 2,000 deep": (
            _raw_token(head, good + b',"x":' + b"[" * 2000 + b"]" * 2000 + b"}"),
            "payload is not JSON",
        ),
        # NaN passed every comparison and 1e300 overflowed datetime.fromtimestamp: a 500
        "exp NaN": (_raw_token(head, b'{"sub":"alice","exp":NaN}'), "has no expiry"),
        "exp Infinity": (_raw_token(head, b'{"sub":"alice","exp":Infinity}'), "has no expiry"),
        "exp 1e300": (_raw_token(head, b'{"sub":"alice","exp":1e300}'), "has no expiry"),
        "exp 1e400": (_raw_token(head, b'{"sub":"alice","exp":1e400}'), "has no expiry"),
        "exp of 400 digits": (
            _raw_token(head, b'{"sub":"alice","exp":1' + b"0" * 400 + b"}"),
            "has no expiry",
        ),
        "exp of 5,000 digits": (
            _raw_token(head, b'{"sub":"alice","exp":1' + b"0" * 5000 + b"}"),
            "payload is not JSON",
        ),
        "exp -1e300": (_raw_token(head, b'{"sub":"alice","exp":-1e300}'), "has no expiry"),
        "exp a string": (_raw_token(head, b'{"sub":"alice","exp":"%d"}' % future), "no expiry"),
        "nbf NaN": (_raw_token(head, good + b',"nbf":NaN}'), "not valid yet"),
        "nbf 1e300": (_raw_token(head, good + b',"nbf":1e300}'), "not valid yet"),
        "payload not UTF-8": (_raw_token(head, b'{"sub":"\xff\xfe"}'), "payload is not JSON"),
        "header not UTF-8": (_raw_token(b"\xc3\x28\xa0\xa1", good + b"}"), "header is not JSON"),
        "sub a number": (_raw_token(head, b'{"sub":7,"exp":%d}' % future), "names no user"),
    }


@pytest.mark.parametrize(
    ("token", "message"), _hostile_tokens().values(), ids=_hostile_tokens().keys()
)
async def test_hostile_tokens_are_unauthenticated_before_asking_perses(
    validator: TokenValidator, perses: PersesStandin, alice: Tokens, token: str, message: str
) -> None:
    assert len(token) <= MAX_TOKEN_BYTES  # within the size every header may have

    with pytest.raises(Unauthenticated, match=message):
        await validator.validate_bearer(token)
    with pytest.raises(Unauthenticated, match=message):
        await validator.validate_cookie(alice.access_token, token)
    with pytest.raises(Unauthenticated, match=message):
        await validator.validate_cookie(token, alice.refresh_token)
    assert perses.count("refresh") + perses.count("whoami") == 0


def test_the_latest_expiry_accepted_is_one_a_datetime_holds() -> None:
    head = b'{"alg":"HS512","typ":"JWT"}'
    claims = parse_token(_raw_token(head, b'{"sub":"alice","exp":253402300799}'))

    assert datetime.fromtimestamp(claims.expires_at, UTC).year == 9999
    with pytest.raises(Unauthenticated, match="has no expiry"):
        parse_token(_raw_token(head, b'{"sub":"alice","exp":253402300800}'))
