"""The API's routes and the job runner in this process, over a real redis-server, with a
scripted model: a question from submission to answer, cancellation, deadlines, and what each
failure looks like to a client."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from persai.agent.llama import ModelTurn
from persai.agent.scripted import MODEL, Call, ScriptedClient, answer
from persai.config import Settings
from persai.errors import ModelUnavailable
from persai.jobs import JobStore
from persai.queue import QUEUE
from persai.redis_client import connect
from persai.server import create_app
from tests.support.inprocess import api_client, job_runner
from tests.support.ports import free_port

pytestmark = pytest.mark.anyio

SETTINGS = Settings(
    redis_url="redis://unused", auth=False, datasources="prom=http://127.0.0.1:9", model=MODEL
)
QUESTION = {"question": "Why is checkout slow?", "datasource": "/proxy/globaldatasources/prom"}


@pytest.fixture
def model() -> ScriptedClient:
    return ScriptedClient([answer("Checkout is fine.")])


@pytest.fixture
async def api(redis: aioredis.Redis, model: ScriptedClient) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(create_app(SETTINGS, redis=redis, gateway=model)) as client:
        yield client


async def submit(api: httpx.AsyncClient) -> str:
    accepted = await api.post("/api/v1/investigations", json=QUESTION)
    assert accepted.status_code == 202, accepted.text
    job_id: str = accepted.json()["id"]
    return job_id


async def test_a_question_is_queued_run_and_answered(
    api: httpx.AsyncClient, redis: aioredis.Redis, model: ScriptedClient
) -> None:
    accepted = await api.post("/api/v1/investigations", json=QUESTION)
    assert accepted.status_code == 202
    body = accepted.json()
    assert body["status"] == "queued"
    assert body["links"]["self"].endswith(body["id"])
    assert await redis.llen(QUEUE) == 1  # "202" means a worker will run it

    await job_runner(redis, SETTINGS, model).run(body["id"])

    record = (await api.get(f"/api/v1/investigations/{body['id']}")).json()
    assert (record["status"], record["answer"]) == ("succeeded", "Checkout is fine.")
    assert record["usage"]["model_calls"] == 1
    stream = await api.get(f"/api/v1/investigations/{body['id']}/events")
    assert stream.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("event: ") for line in stream.text.splitlines() if "event:" in line]
    assert "answer" in events
    assert events[-1] == "done"
    [sent] = model.calls
    assert sent.model == MODEL
    assert "Why is checkout slow?" in str(sent.messages)
    conversation = (await api.get(f"/api/v1/conversations/{body['conversation_id']}")).json()
    assert "Checkout is fine." in str(conversation)


async def test_a_job_cancelled_in_the_queue_never_reaches_the_model(
    api: httpx.AsyncClient, redis: aioredis.Redis, model: ScriptedClient
) -> None:
    job_id = await submit(api)

    cancelled = await api.post(f"/api/v1/investigations/{job_id}/cancel")
    assert cancelled.status_code == 200
    await job_runner(redis, SETTINGS, model).run(job_id)

    record = (await api.get(f"/api/v1/investigations/{job_id}")).json()
    assert record["status"] == "cancelled"
    assert model.calls == []


async def test_a_running_job_that_is_cancelled_keeps_what_it_found(
    api: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    began = asyncio.Event()

    async def thinks_forever(call: Call) -> ModelTurn:
        began.set()
        await asyncio.Event().wait()
        raise AssertionError("not cancelled")

    job_id = await submit(api)
    running = asyncio.create_task(
        job_runner(redis, SETTINGS, ScriptedClient([thinks_forever])).run(job_id)
    )
    await asyncio.wait_for(began.wait(), 5)

    running.cancel()  # as the worker does when the cancel reaches it
    with pytest.raises(asyncio.CancelledError):
        await running

    record = (await api.get(f"/api/v1/investigations/{job_id}")).json()
    assert record["status"] == "cancelled"
    assert record["finished_at"] is not None


async def test_a_model_that_never_answers_fails_the_job_by_its_deadline(
    api: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    async def hangs(call: Call) -> ModelTurn:
        await asyncio.sleep(60)
        raise AssertionError("not cancelled")

    settings = SETTINGS.model_copy(update={"model_call_timeout_s": 0.1})
    job_id = await submit(api)

    await job_runner(redis, settings, ScriptedClient([hangs])).run(job_id)

    record = (await api.get(f"/api/v1/investigations/{job_id}")).json()
    assert record["status"] == "failed"
    assert "did not answer within" in record["error"]


async def test_a_model_error_fails_the_job_with_its_message(
    api: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    job_id = await submit(api)

    failing = ScriptedClient([ModelUnavailable("the model server is unavailable")])
    await job_runner(redis, SETTINGS, failing).run(job_id)

    record = (await api.get(f"/api/v1/investigations/{job_id}")).json()
    assert (record["status"], record["error"]) == ("failed", "the model server is unavailable")


async def test_a_finished_job_is_not_run_again(
    api: httpx.AsyncClient, redis: aioredis.Redis, model: ScriptedClient
) -> None:
    job_id = await submit(api)
    runner = job_runner(redis, SETTINGS, model)
    await runner.run(job_id)

    await runner.run(job_id)  # a redelivered message

    assert len(model.calls) == 1
    job = await JobStore(redis, retention_s=60).get(job_id)
    assert job is not None
    assert job.attempts == 1


@pytest.mark.parametrize(
    ("body", "status", "error_type", "says"),
    [
        ({**QUESTION, "question": "  "}, 422, "validation_error", "question"),
        ({**QUESTION, "extra": 1}, 422, "validation_error", "extra"),
        ({**QUESTION, "conversation_id": "nope"}, 422, "validation_error", "conversation_id"),
        ({**QUESTION, "model": "llm/unknown"}, 400, "unknown_model", "llm/unknown"),
        ({**QUESTION, "datasource": "/proxy/globaldatasources/other"}, 400, None, "other"),
        ({**QUESTION, "question": "x" * 9000}, 413, None, ""),
        ({"question": "q"}, 422, "validation_error", "datasource"),
        ({**QUESTION, "datasource": "http://evil.example/api/v1"}, 400, None, ""),
        ({**QUESTION, "datasource": "/proxy/globaldatasources/../x"}, 400, None, ""),
        ({**QUESTION, "datasource": "/proxy/globaldatasources/prom?x=1"}, 400, None, ""),
    ],
)
async def test_bad_questions_are_refused_with_what_is_wrong(
    api: httpx.AsyncClient,
    redis: aioredis.Redis,
    body: dict[str, object],
    status: int,
    error_type: str | None,
    says: str,
) -> None:
    refused = await api.post("/api/v1/investigations", json=body)

    assert refused.status_code == status, refused.text
    error = refused.json()["error"]
    assert error_type is None or error["type"] == error_type
    assert error["message"]
    assert says in error["message"]
    assert await redis.llen(QUEUE) == 0


async def test_a_body_that_is_not_json_is_a_422(api: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    refused = await api.post("/api/v1/investigations", content=b"{", headers=headers)

    assert refused.status_code == 422
    assert refused.json()["error"]["type"] == "validation_error"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/investigations/0123456789abcdef0123456789abcdef", 404),
        ("/api/v1/investigations/not-an-id", 404),
        ("/api/v1/conversations/0123456789abcdef0123456789abcdef", 404),
        ("/api/v1/investigations/x/cancel", 404),
    ],
)
async def test_unknown_and_malformed_ids_are_client_errors(
    api: httpx.AsyncClient, path: str, status: int
) -> None:
    answered = await (api.post(path) if path.endswith("/cancel") else api.get(path))

    assert answered.status_code == status
    assert set(answered.json()["error"]) == {"type", "message"}
    assert answered.json()["error"]["type"] == "not_found"


async def test_health_version_and_docs(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    assert (await api.get("/version")).json()["version"]
    assert (await api.get("/docs")).status_code == 200


async def test_a_model_server_that_is_down_is_a_503_naming_it(redis: aioredis.Redis) -> None:
    down = ScriptedClient([], served=ModelUnavailable("Llama Stack is unreachable"))
    async with api_client(create_app(SETTINGS, redis=redis, gateway=down)) as api:
        models = await api.get("/api/v1/models")
        submitted = await api.post("/api/v1/investigations", json={**QUESTION, "model": MODEL})

    assert models.status_code == 503
    assert "Llama Stack" in models.json()["error"]["message"]
    assert submitted.status_code == 503
    assert await redis.llen(QUEUE) == 0


async def test_redis_down_is_a_503_naming_redis_and_not_its_address(
    model: ScriptedClient,
) -> None:
    gone = connect(f"redis://127.0.0.1:{free_port()}/0", patience_s=0.2, max_connections=4)
    async with api_client(create_app(SETTINGS, redis=gone, gateway=model)) as api:
        submitted = await api.post("/api/v1/investigations", json=QUESTION)
        ready = await api.get("/readyz")
    await gone.aclose()

    assert submitted.status_code == 503
    message = submitted.json()["error"]["message"]
    assert "Redis" in message
    assert "127.0.0.1" not in message
    assert ready.status_code == 503


async def test_the_app_closes_what_it_opened_and_leaves_what_it_was_given(
    redis: aioredis.Redis, model: ScriptedClient
) -> None:
    async with api_client(create_app(SETTINGS, redis=redis, gateway=model)) as api:
        assert (await api.get("/healthz")).status_code == 200

    assert not model.closed  # the test's, not the app's
    assert await redis.ping()
