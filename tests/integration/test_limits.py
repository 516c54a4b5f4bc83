"""What a hostile client can make PersAI hold is bounded: bodies, event streams, sessions, and
Redis refusing writes is a 503 with the reason. The API alone (no worker: jobs stay queued)
over a real `redis-server`."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.jobs import parse_sse
from tests.support.persai import PersAIProcess
from tests.support.ports import free_port
from tests.support.redis import RedisServer

DATASOURCE = "/proxy/globaldatasources/prom"
MiB = 1024 * 1024


@pytest.fixture
def start_api(redis_server: RedisServer, tmp_path: Path) -> Iterator[Callable[..., PersAIProcess]]:
    """Start `persai api` with extra environment; it stops after the test."""
    started: list[PersAIProcess] = []

    def start(**extra_env: str) -> PersAIProcess:
        env = {
            "PERSAI_REDIS_URL": redis_server.url,
            "PERSAI_AUTH": "false",
            "PERSAI_MODEL": "llm/scripted",  # set: Llama Stack is never asked for its models
            "PERSAI_LLAMA_STACK_URL": f"http://127.0.0.1:{free_port()}",
            "PERSAI_DATASOURCES": f"prom=http://127.0.0.1:{free_port()}",  # no worker asks it
            "PERSAI_WORKER_METRICS_PORT": "0",
            **extra_env,
        }
        api = PersAIProcess("api", env, tmp_path / f"api{len(started)}.log")
        started.append(api)
        return api.wait_ready()

    yield start
    for api in started:
        api.stop()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def submit(client: httpx.Client) -> str:
    response = client.post(
        "/api/v1/investigations", json={"question": "What happened?", "datasource": DATASOURCE}
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


class ChunkedBody:
    """`total` bytes in 64 KiB chunks (no Content-Length: httpx sends it chunked), counting
    what the client managed to send."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        chunk = b" " * (64 * 1024)
        while self.sent < self.total:
            self.sent += len(chunk)
            yield chunk


def test_a_chunked_body_past_the_cap_is_refused_before_it_is_read(
    start_api: Callable[..., PersAIProcess],
) -> None:
    api = start_api()
    with httpx.Client(base_url=api.url, timeout=30) as client:
        assert client.post("/session").status_code == 201  # a body within the cap is served
        sized = client.post(
            "/api/v1/investigations",
            content=b" " * (300 * 1024),
            headers={"content-type": "application/json"},
        )
        assert sized.status_code == 413
    before = rss_bytes(api.process.pid)
    for _ in range(3):
        body = ChunkedBody(120 * MiB)
        began = time.monotonic()
        response = httpx.post(
            f"{api.url}/api/v1/investigations",
            content=body,
            headers={"content-type": "application/json"},
            timeout=30,
        )
        elapsed_s = time.monotonic() - began
        assert response.status_code == 413, response.text
        assert response.json()["error"] == {
            "type": "payload_too_large",
            "message": "the body is larger than 262144 bytes",
        }
        # the API stopped reading: the client could send only what the socket buffers hold
        assert body.sent < 32 * MiB, f"sent {body.sent / MiB:.0f} MiB"
        assert elapsed_s < 5
    grown = rss_bytes(api.process.pid) - before
    assert grown < 16 * MiB, f"the API grew by {grown / MiB:.0f} MiB"


def test_event_streams_per_user_are_bounded_and_freed_on_disconnect(
    start_api: Callable[..., PersAIProcess],
) -> None:
    api = start_api(PERSAI_STREAMS_PER_USER="2")
    with httpx.Client(base_url=api.url, timeout=10) as client:
        job_id = submit(client)  # stays queued: no worker runs
        url = f"/api/v1/investigations/{job_id}/events"
        session_id = client.post("/session").json()["session_id"]
        turn = f"/session/{session_id}/turn?datasource_path={DATASOURCE}"
        with (
            httpx.Client(base_url=api.url, timeout=10) as one,
            httpx.Client(base_url=api.url, timeout=10) as other,
            one.stream("GET", url) as native,
            other.stream("POST", turn, json={"message": "And now?"}) as plugin,
        ):
            assert (native.status_code, plugin.status_code) == (200, 200)
            refused = client.get(url)
            assert refused.status_code == 429
            assert "2 event streams open" in refused.json()["error"]["message"]
            assert int(refused.headers["retry-after"]) > 0
            again = client.post(turn, json={"message": "Once more?"})
            assert again.status_code == 429  # the plugin's turns count the same
        # both clients left: their slots come back within moments
        deadline = time.monotonic() + 5
        while (status := _open_and_close(api.url, url)) == 429 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status == 200


def _open_and_close(base_url: str, url: str) -> int:
    with httpx.Client(base_url=base_url, timeout=10) as client, client.stream("GET", url) as r:
        return r.status_code


def test_last_event_id_is_checked_and_a_finished_stream_ends_at_once(
    start_api: Callable[..., PersAIProcess],
) -> None:
    api = start_api()
    with httpx.Client(base_url=api.url, timeout=10) as client:
        job_id = submit(client)
        url = f"/api/v1/investigations/{job_id}/events"
        for bad in ("yesterday", "18446744073709551616-0", "99999999999999-0"):
            response = client.get(url, headers={"Last-Event-ID": bad})
            assert response.status_code == 400, (bad, response.text)
            assert response.json()["error"]["type"] == "invalid_request"
        assert client.post(f"/api/v1/investigations/{job_id}/cancel").status_code == 200
        events = parse_sse(client.get(url).text)
        assert [e["event"] for e in events] == ["status", "status", "done"]
        resumed = parse_sse(client.get(url, headers={"Last-Event-ID": events[0]["id"]}).text)
        assert resumed == events[1:]
        began = time.monotonic()
        ended = client.get(url, headers={"Last-Event-ID": events[-1]["id"]})
        assert (ended.status_code, parse_sse(ended.text)) == (200, [])
        assert time.monotonic() - began < 2  # not after a heartbeat or an idle check


def test_sessions_per_user_are_bounded_and_expire(
    start_api: Callable[..., PersAIProcess], redis_server: RedisServer
) -> None:
    api = start_api(PERSAI_CONVERSATIONS_PER_USER="3", PERSAI_CONVERSATION_RETENTION_S="3600")
    with httpx.Client(base_url=api.url, timeout=10) as client:
        created = [client.post("/session") for _ in range(3)]
        assert [r.status_code for r in created] == [201, 201, 201]
        refused = client.post("/session")
        assert refused.status_code == 429
        message = refused.json()["error"]["message"]
        assert "you hold 3 conversations (the limit is 3); delete some" in message
        assert 0 < int(refused.headers["retry-after"]) <= 3600
        asked = client.post(
            "/api/v1/investigations", json={"question": "Why?", "datasource": DATASOURCE}
        )
        assert asked.status_code == 429  # a new question starts a conversation too
        first = created[0].json()["session_id"]
        assert client.delete(f"/session/{first}").status_code == 204
        assert client.post("/session").status_code == 201
    ttl = redis_server.client().ttl(f"persai:conversation:{created[1].json()['session_id']}")
    assert 3500 < ttl <= 3600


def _misconf(redis_server: RedisServer) -> Callable[[], None]:
    """Make `redis-server` fail to persist (its directory gone, a save point set): it refuses
    writes with MISCONF until saving is turned off again."""
    redis = redis_server.client()
    shutil.rmtree(redis_server.data_dir)
    redis.config_set("save", "1 1")
    redis.bgsave()
    deadline = time.monotonic() + 10
    while redis.info("persistence")["rdb_last_bgsave_status"] != "err":
        assert time.monotonic() < deadline, "the failing save did not fail"
        time.sleep(0.05)
    return lambda: redis.config_set("save", "")


def _out_of_memory(redis_server: RedisServer) -> Callable[[], None]:
    redis = redis_server.client()
    redis.config_set("maxmemory", "1")  # noeviction: every write is refused
    return lambda: redis.config_set("maxmemory", "0")


def _read_only(redis_server: RedisServer) -> Callable[[], None]:
    redis = redis_server.client()
    redis.replicaof("127.0.0.1", str(free_port()))  # a replica of a master that is not there
    return lambda: redis.replicaof("NO", "ONE")


@pytest.mark.parametrize(
    ("refuse", "reason"),
    [
        (_out_of_memory, "Redis refuses writes: it is out of memory"),
        (_read_only, "Redis refuses writes: it is a read-only replica"),
        (_misconf, "Redis refuses writes: it cannot persist its data to disk"),
    ],
    ids=["oom", "readonly", "misconf"],
)
def test_redis_refusing_writes_is_a_503_with_the_reason(
    start_api: Callable[..., PersAIProcess],
    redis_server: RedisServer,
    refuse: Callable[[RedisServer], Callable[[], None]],
    reason: str,
) -> None:
    api = start_api()
    with httpx.Client(base_url=api.url, timeout=10) as client:
        job_id = submit(client)
        restore = refuse(redis_server)
        try:
            for response in (
                client.post("/session"),
                client.post(
                    "/api/v1/investigations", json={"question": "Why?", "datasource": DATASOURCE}
                ),
                client.get(f"/api/v1/investigations/{job_id}/events"),  # a stream's slot
            ):
                assert response.status_code == 503, response.text
                error = response.json()["error"]
                assert error["type"] == "store_unavailable"
                assert error["message"].startswith(reason)
                assert int(response.headers["retry-after"]) > 0
        finally:
            restore()
        assert client.post("/session").status_code == 201  # and back once Redis takes writes
