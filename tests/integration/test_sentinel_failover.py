"""Redis fails over under load: a master and a replica with AOF, three Sentinels, 200
investigations in flight, the master SIGKILLed. The API answers 503 (never 500) until the
Sentinels promote the replica and recovers by itself; every investigation it accepted (202)
finishes; SSE subscribers reconnect with Last-Event-ID and miss none of what survived.

The model answers inside the worker (`bench.harness.fake_worker`): Llama Stack is not what
this is about, and its start-up would double the test's time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis

from persai.agent.scripted import Script
from persai.jobs import keys
from tests.support.jobs import DATASOURCE, parse_sse
from tests.support.persai import PersAIProcess, wait_for_worker
from tests.support.sentinel import MASTER_NAME, SentinelCluster

INVESTIGATIONS = 200
FOLLOWED = 5
# each investigation streams its answer for about 4 s, so that the kill falls mid-run
SCRIPT = Script(model_delay_s=0.5, answer_deltas=8, delta_interval_s=0.5)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    with SentinelCluster(tmp_path) as running:
        yield running


def _env(cluster: SentinelCluster) -> dict[str, str]:
    return {
        "PERSAI_REDIS_SENTINELS": cluster.sentinels_setting,
        "PERSAI_REDIS_MASTER_NAME": MASTER_NAME,
        "PERSAI_AUTH": "false",
        "PERSAI_MODEL": "scripted",
        "PERSAI_DATASOURCES": "prom=http://127.0.0.1:9",  # never queried: no tool calls
        "PERSAI_MAX_RUNNING_PER_USER": "100000",
        "PERSAI_SUBMISSIONS_PER_MINUTE": "100000",
        "PERSAI_STREAMS_PER_USER": "1000",
        "PERSAI_CONVERSATIONS_PER_USER": "100000",
        "PERSAI_HEARTBEAT_INTERVAL_S": "0.5",
        "PERSAI_HEARTBEAT_TIMEOUT_S": "3",
        "PERSAI_REQUEUE_GRACE_S": "2",
        "PERSAI_WORKER_METRICS_PORT": "0",
    }


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "bench.harness.fake_worker", "--script", SCRIPT.to_json()]
    argv += ["--concurrency", str(INVESTIGATIONS + 50)]
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class Follower(threading.Thread):
    """An SSE client of one job that reconnects with Last-Event-ID whenever its stream ends
    or fails before `done` (503s included), as EventSource does."""

    def __init__(self, api_url: str, job_id: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{api_url}/api/v1/investigations/{job_id}/events"
        self.ids: list[str] = []
        self.reconnects = 0
        self.statuses: Counter[int] = Counter()
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 120
        while not self.done.is_set() and time.monotonic() < deadline:
            headers = {"Last-Event-ID": self.ids[-1]} if self.ids else {}
            try:
                with httpx.stream("GET", self.url, headers=headers, timeout=30) as response:
                    self.statuses[response.status_code] += 1
                    if response.status_code == 200:
                        for event in parse_sse(response.read().decode()):
                            self.ids.append(event["id"])
                            if event["event"] == "done":
                                self.done.set()
            except httpx.HTTPError:
                pass
            if not self.done.is_set():
                self.reconnects += 1
                time.sleep(0.2)


def _poll(api_url: str, job_ids: list[str], stop: threading.Event, seen: Counter[int]) -> None:
    """Read and submit throughout, as clients do; every status code answered is counted."""
    with httpx.Client(base_url=api_url, timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                seen[
                    client.get(f"/api/v1/investigations/{job_ids[n % len(job_ids)]}").status_code
                ] += 1
                body = {"question": f"during the failover {n}", "datasource": DATASOURCE}
                answer = client.post("/api/v1/investigations", json=body)
                seen[answer.status_code] += 1
                if answer.status_code == 202:
                    job_ids.append(answer.json()["id"])
            except httpx.HTTPError:
                seen[0] += 1
            time.sleep(0.05)


def test_a_master_killed_mid_run_fails_over_and_every_accepted_investigation_finishes(
    cluster: SentinelCluster, tmp_path: Path
) -> None:
    env = _env(cluster)
    api = PersAIProcess("api", env, tmp_path / "api.log").wait_ready()
    worker = _worker(env, tmp_path / "worker.log")
    try:
        wait_for_worker(api.url, timeout_s=60)
        with httpx.Client(base_url=api.url, timeout=30) as client:
            accepted = []
            for n in range(INVESTIGATIONS):
                body = {"question": f"Why is checkout slow? ({n})", "datasource": DATASOURCE}
                response = client.post("/api/v1/investigations", json=body)
                assert response.status_code == 202, response.text
                accepted.append(response.json()["id"])
        followers = [Follower(api.url, job_id) for job_id in accepted[-FOLLOWED:]]
        for follower in followers:
            follower.start()
        master = redis.Redis(port=cluster.master_port, decode_responses=True)
        deadline = time.monotonic() + 60
        while master.scard(keys.RUNNING) < INVESTIGATIONS // 2:  # mid-run
            assert time.monotonic() < deadline, "the investigations did not start"
            time.sleep(0.05)
        master.close()

        seen: Counter[int] = Counter()
        stop = threading.Event()
        poller = threading.Thread(target=_poll, args=(api.url, accepted, stop, seen), daemon=True)
        poller.start()
        cluster.kill_master()
        cluster.wait_for_new_master()
        recovered = time.monotonic() + 60
        with httpx.Client(base_url=api.url, timeout=10) as client:
            while client.get(f"/api/v1/investigations/{accepted[0]}").status_code != 200:
                assert time.monotonic() < recovered, "the API did not recover by itself"
                time.sleep(0.1)
        time.sleep(1.0)  # a few submissions after the recovery, too
        stop.set()
        poller.join(15)

        assert seen[500] == 0, seen
        assert set(seen) <= {200, 202, 503}, seen
        assert seen[503] > 0, f"no 503 while the master was down: {seen}"

        with httpx.Client(base_url=api.url, timeout=10) as client:
            finish_by = time.monotonic() + 90
            unfinished = list(accepted)
            while unfinished:
                assert time.monotonic() < finish_by, f"{len(unfinished)} never finished"
                job = client.get(f"/api/v1/investigations/{unfinished[-1]}").json()
                if job.get("status") in ("succeeded", "failed", "cancelled"):
                    assert job["status"] == "succeeded", job
                    unfinished.pop()
                else:
                    time.sleep(0.1)

        survivor = redis.Redis(port=cluster.replica_port, decode_responses=True)
        for follower in followers:
            follower.join(60)
            assert follower.done.is_set(), f"{follower.url}: no done ({follower.statuses})"
            order = [tuple(map(int, i.split("-"))) for i in follower.ids]
            assert order == sorted(set(order)), "events repeated or out of order"
            stream = cast(list[Any], survivor.xrange(keys.events(follower.url.split("/")[-2])))
            stored = [entry_id for entry_id, _ in stream]
            assert set(stored) <= set(follower.ids), "an event that survived was never delivered"
        survivor.close()
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, 15)
            worker.wait(20)
        api.stop()
