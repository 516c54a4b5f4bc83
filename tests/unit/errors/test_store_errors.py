import httpx
import pytest
from fastapi import FastAPI
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError

from persai.errors import StoreUnavailable, install, store_unavailable
from persai.jobs import redis_errors

pytestmark = pytest.mark.anyio

# Redis's replies as redis-py raises them (it strips the code of those it has a class for).
REFUSALS = {
    "it is out of memory": OutOfMemoryError(
        "command not allowed when used memory > 'maxmemory'.", status_code="OOM"
    ),
    "read-only replica": ReadOnlyError(
        "You can't write against a read only replica.", status_code="READONLY"
    ),
    "cannot persist its data to disk": ResponseError(
        "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to "
        "persist to disk."
    ),
    "too few replicas": ResponseError("NOREPLICAS Not enough good replicas to write."),
}


@pytest.mark.parametrize("reason", sorted(REFUSALS))
async def test_a_write_refusal_is_the_store_being_unavailable(reason: str) -> None:
    with pytest.raises(StoreUnavailable, match=f"^Redis refuses writes: .*{reason}") as raised:
        async with redis_errors():
            raise REFUSALS[reason]
    assert raised.value.status_code == 503
    assert raised.value.retry_after_s


async def test_other_error_replies_stay_what_they_are() -> None:
    wrong = ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        async with redis_errors():
            raise wrong
    assert store_unavailable(wrong) is None


def test_an_unreachable_redis_is_named_without_its_address() -> None:
    mapped = store_unavailable(
        RedisConnectionError("Error 111 connecting to 10.1.2.3:6379. Connection refused.")
    )
    assert mapped is not None
    assert mapped.message == "Redis is unreachable: ConnectionError"


def app_raising(error: Exception) -> FastAPI:
    app = FastAPI()
    install(app)

    @app.post("/write")
    async def write() -> None:
        raise error

    return app


async def post(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://persai") as client:
        return await client.post("/write")


async def test_a_refusal_no_store_mapped_is_still_a_503_with_the_reason() -> None:
    response = await post(app_raising(REFUSALS["it is out of memory"]))
    assert response.status_code == 503
    assert response.json() == {
        "error": {
            "type": "store_unavailable",
            "message": "Redis refuses writes: it is out of memory",
        }
    }
    assert int(response.headers["retry-after"]) > 0


async def test_an_unmapped_redis_error_is_an_internal_error() -> None:
    response = await post(app_raising(ResponseError("WRONGTYPE Operation against a key")))
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "internal_error"
