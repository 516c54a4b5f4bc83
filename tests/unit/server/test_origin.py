"""Cross-site requests: the Perses cookies go with every request a browser sends, whichever
page made it, so an unsafe request is taken only from a page PersAI trusts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace

import fakeredis
import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from persai.config import Settings
from persai.credentials import Sealer, cookieless_jar
from persai.errors import install
from persai.server.auth import Authenticator
from persai.server.deps import CurrentUser
from persai.server.token_validator import TokenValidator
from tests.support.perses import PersesStandin, Tokens

pytestmark = pytest.mark.anyio

KEY = "a sealing key of thirty-two bytes or more"
EVIL = "http://evil.example"
PLUGIN_DEV = "http://localhost:3000"
UNSAFE = ["POST", "PUT", "PATCH", "DELETE"]


class Question(BaseModel):
    question: str


def _app(authenticator: Authenticator) -> FastAPI:
    """Routes as PersAI's are: each takes the caller from the CurrentUser dependency."""
    app = FastAPI()
    install(app)
    app.state.persai = SimpleNamespace(authenticator=authenticator)

    @app.api_route("/api/v1/investigations/{job_id}/cancel", methods=["GET", *UNSAFE])
    async def cancel(user: CurrentUser) -> dict[str, str]:
        return {"user": user.user}

    @app.post("/api/v1/investigations")
    async def submit(body: Question, user: CurrentUser) -> dict[str, str]:
        return {"user": user.user, "question": body.question}

    return app


Client = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def client(perses: PersesStandin) -> AsyncIterator[Client]:
    """A client of the app above, authenticating through the Perses stand-in."""
    redis = fakeredis.FakeAsyncRedis()
    async with httpx.AsyncClient(timeout=5, cookies=cookieless_jar()) as http:
        opened: list[httpx.AsyncClient] = []

        def make(**settings: object) -> httpx.AsyncClient:
            config = Settings(
                **{"perses_api_url": perses.base_url, "secret_key": KEY, **settings}  # type: ignore[arg-type]
            )
            validator = None
            if config.auth:
                validator = TokenValidator(
                    redis, http, perses.base_url, cache_ttl_s=60, sealer=Sealer(KEY)
                )
            transport = httpx.ASGITransport(app=_app(Authenticator(config, validator)))
            opened.append(httpx.AsyncClient(transport=transport, base_url="http://persai.test"))
            return opened[-1]

        yield make
        for each in opened:
            await each.aclose()
    await redis.aclose()


@pytest.fixture
def alice(perses: PersesStandin) -> Tokens:
    return perses.issue_tokens("alice")


def _cookies(tokens: Tokens) -> dict[str, str]:
    return {"cookie": "; ".join(f"{k}={v}" for k, v in tokens.cookies.items())}


@pytest.mark.parametrize("method", UNSAFE)
async def test_a_cookie_request_from_another_site_is_refused_before_perses_is_asked(
    client: Client, perses: PersesStandin, alice: Tokens, method: str
) -> None:
    answer = await client().request(
        method, "/api/v1/investigations/j1/cancel", headers={"origin": EVIL, **_cookies(alice)}
    )

    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["type"] == "forbidden"
    assert "origin 'http://evil.example' is not allowed" in error["message"]
    assert "PERSAI_CORS_ORIGINS" in error["message"]
    assert perses.count("refresh") == 0


@pytest.mark.parametrize("origin", ["perses", "listed", "own"])
async def test_a_cookie_request_from_perses_a_listed_origin_or_persai_itself_is_taken(
    client: Client, perses: PersesStandin, alice: Tokens, origin: str
) -> None:
    origins = {"perses": perses.base_url, "listed": PLUGIN_DEV, "own": "http://persai.test"}
    cors = f"{perses.base_url},{PLUGIN_DEV}" if origin == "listed" else ""

    answer = await client(cors_origins=cors).post(
        "/api/v1/investigations/j1/cancel", headers={"origin": origins[origin], **_cookies(alice)}
    )

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"user": "alice"}


async def test_the_perses_origin_is_not_trusted_once_other_origins_are_listed(
    client: Client, perses: PersesStandin, alice: Tokens
) -> None:
    answer = await client(cors_origins=PLUGIN_DEV).post(
        "/api/v1/investigations/j1/cancel", headers={"origin": perses.base_url, **_cookies(alice)}
    )
    assert answer.status_code == 403


@pytest.mark.parametrize("origin", ["null", "http://persai.test.evil.example", EVIL.upper()])
async def test_lookalike_and_opaque_origins_are_refused(
    client: Client, alice: Tokens, origin: str
) -> None:
    answer = await client().post(
        "/api/v1/investigations/j1/cancel", headers={"origin": origin, **_cookies(alice)}
    )
    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"sec-fetch-site": "cross-site"}, 403),
        ({"sec-fetch-site": "same-site"}, 403),
        ({"sec-fetch-site": "same-origin"}, 200),
        ({"referer": f"{EVIL}/page"}, 403),
        ({"referer": "http://persai.test/docs"}, 200),
        ({}, 200),  # a script with the cookies: no web page can make a browser send neither
    ],
)
async def test_without_origin_a_cookie_request_is_judged_by_what_browsers_send(
    client: Client, alice: Tokens, headers: dict[str, str], status: int
) -> None:
    answer = await client().post(
        "/api/v1/investigations/j1/cancel", headers={**headers, **_cookies(alice)}
    )
    assert answer.status_code == status, answer.text


async def test_a_bearer_client_without_origin_is_taken(client: Client, alice: Tokens) -> None:
    answer = await client().delete(
        "/api/v1/investigations/j1/cancel",
        headers={"authorization": f"Bearer {alice.access_token}", "referer": f"{EVIL}/x"},
    )
    assert answer.status_code == 200, answer.text


async def test_reading_from_another_site_is_left_to_cors(client: Client, alice: Tokens) -> None:
    answer = await client().get(
        "/api/v1/investigations/j1/cancel", headers={"origin": EVIL, **_cookies(alice)}
    )
    assert answer.status_code == 200  # CORS keeps the answer from the page


async def test_with_authentication_off_another_site_still_cannot_act(client: Client) -> None:
    """`persai dev` on a laptop: any page the user opens could otherwise cancel or delete."""
    persai = client(auth=False)

    refused = await persai.post("/api/v1/investigations/j1/cancel", headers={"origin": EVIL})
    script = await persai.post("/api/v1/investigations/j1/cancel")

    assert refused.status_code == 403
    assert script.json() == {"user": "anonymous"}


async def test_a_json_body_without_a_json_content_type_is_refused(client: Client) -> None:
    """A page may send text/plain or a typeless Blob without a CORS preflight: such a body is
    never read as JSON (FastAPI 0.132 and later), so a submission always takes a preflight."""
    persai = client(auth=False)
    body = b'{"question": "why?"}'

    typeless = await persai.post("/api/v1/investigations", content=body)
    text = await persai.post(
        "/api/v1/investigations", content=body, headers={"content-type": "text/plain"}
    )
    json = await persai.post(
        "/api/v1/investigations", content=body, headers={"content-type": "application/json"}
    )

    assert (typeless.status_code, text.status_code, json.status_code) == (422, 422, 200)
