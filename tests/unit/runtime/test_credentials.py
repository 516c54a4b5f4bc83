"""The worker's forwarded credentials: a refreshed token is sealed again while its job runs, and
never once the job has ended (its end deleted them)."""

from collections.abc import AsyncIterator, Awaitable, Callable

import fakeredis
import httpx
import pytest
from pydantic import SecretStr

from persai.config import Settings
from persai.credentials import Credentials, Sealer, cookieless_jar
from persai.jobs import Job, JobStatus, JobStore, keys
from persai.runtime.credentials import CredentialsSource
from tests.support.perses import PersesStandin

pytestmark = pytest.mark.anyio

SECRET_KEY = "k" * 32


class AfterEachResponse(httpx.AsyncBaseTransport):
    """The real network, with `then` run once a response arrived and before the caller gets
    it: something that happens while a request is in flight."""

    def __init__(self) -> None:
        self._network = httpx.AsyncHTTPTransport()
        self.then: Callable[[], Awaitable[object]] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._network.handle_async_request(request)
        if self.then is not None:
            await self.then()
        return response

    async def aclose(self) -> None:
        await self._network.aclose()


@pytest.fixture
async def store() -> AsyncIterator[JobStore]:
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    yield JobStore(redis, retention_s=60)
    await redis.aclose()


@pytest.fixture
async def network() -> AsyncIterator[AfterEachResponse]:
    transport = AfterEachResponse()
    yield transport
    await transport.aclose()


@pytest.fixture
async def source(
    perses: PersesStandin, store: JobStore, network: AfterEachResponse
) -> AsyncIterator[CredentialsSource]:
    settings = Settings(perses_api_url=perses.base_url, secret_key=SECRET_KEY, auth=True)
    async with httpx.AsyncClient(transport=network, cookies=cookieless_jar()) as http:
        yield CredentialsSource(settings, store, http)


async def _running_job(store: JobStore, source: CredentialsSource, perses: PersesStandin) -> Job:
    """Alice's running job, whose access token has expired (the worker refreshes it first)."""
    tokens = perses.issue_tokens("alice", access_ttl_s=-1)
    job = Job(id="j1", owner="alice", question="q", datasource="/d", conversation_id="c")
    sealed = source.seal(Credentials.from_tokens(tokens.access_token, tokens.refresh_token), "j1")
    await store.create(job, sealed, 3600)
    assert await store.transition(job, JobStatus.RUNNING, (JobStatus.QUEUED,))
    return job


async def test_a_token_refreshed_while_the_job_runs_is_sealed_again(
    store: JobStore, source: CredentialsSource, perses: PersesStandin
) -> None:
    await _running_job(store, source, perses)
    tokens = await source.tokens_for("j1")
    assert tokens is not None
    access = await tokens.bearer()
    assert perses.count("refresh") == 1
    sealed = await store.credentials("j1")
    assert sealed is not None
    kept = Sealer(SecretStr(SECRET_KEY)).open(sealed, context="j1")
    assert kept.access_token.get_secret_value() == access  # the next attempt starts from it
    assert access not in sealed


async def test_a_refresh_that_completes_after_the_job_ended_leaves_no_credentials(
    store: JobStore, source: CredentialsSource, perses: PersesStandin, network: AfterEachResponse
) -> None:
    job = await _running_job(store, source, perses)
    tokens = await source.tokens_for("j1")
    assert tokens is not None

    async def job_ends() -> None:  # while Perses answers the refresh
        network.then = None
        assert await store.transition(job, JobStatus.SUCCEEDED, (JobStatus.RUNNING,))

    network.then = job_ends
    await tokens.bearer()  # the refresh completes: its token is still handed to the caller
    assert perses.count("refresh") == 1
    assert await store.credentials("j1") is None
    redis = store._redis
    assert not await redis.exists(keys.credentials("j1"))
    assert [key async for key in redis.scan_iter(match="*credentials*")] == []
