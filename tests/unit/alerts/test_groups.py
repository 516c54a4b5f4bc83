"""The alert group claims in Redis when a replica dies between a claim and its job."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from persai.alerts import groups
from persai.alerts.groups import AlertGroups
from persai.jobs import keys

pytestmark = pytest.mark.anyio


async def _age_claims(redis: aioredis.Redis, receiver: str, group: str) -> None:
    """As if every claim of the group were made STALE_CLAIM_S ago or more."""
    key = groups.group_key(receiver, group)
    fields = await redis.hgetall(key)
    old = int((await redis.time())[0]) - groups.STALE_CLAIM_S - 1
    for name, value in fields.items():
        if name.startswith("c:"):
            await redis.hset(key, name, f"{value.split()[0]} {old}")
    await redis.hset(key, "job_at", old)


async def test_a_first_claim_whose_job_was_never_stored_is_undone_by_the_next_post(
    redis: aioredis.Redis,
) -> None:
    claims = AlertGroups(redis)
    first = await claims.claim("oncall", "g", ["a1"], "job1")
    assert first.decision == "new"
    await _age_claims(redis, "oncall", "g")  # job1 never stored: its replica died
    again = await claims.claim("oncall", "g", ["a1"], "job2")
    assert (again.decision, again.job_id) == ("new", "job2")
    joined = await claims.claim("oncall", "g", ["a1", "a2"], "job3")
    assert joined.decision == "same"  # job2's claim is fresh: it is being stored


async def test_a_follow_up_whose_job_was_never_stored_gives_its_alerts_back(
    redis: aioredis.Redis,
) -> None:
    claims = AlertGroups(redis)
    await claims.claim("oncall", "g", ["a1"], "job1")
    await redis.hset(keys.job("job1"), "doc", '{"conversation_id": "c1"}')  # job1 stored...
    await claims.set_conversation("oncall", "g", "c1")
    follow = await claims.claim("oncall", "g", ["a1", "a2"], "job2")
    assert (follow.decision, follow.new_fingerprints) == ("follow_up", ("a2",))
    await _age_claims(redis, "oncall", "g")  # ...job2 never
    again = await claims.claim("oncall", "g", ["a1", "a2"], "job3")
    assert (again.decision, again.job_id, again.conversation_id) == ("follow_up", "job3", "c1")
    assert again.new_fingerprints == ("a2",)


async def test_a_conversation_not_written_beside_the_first_job_is_read_from_it(
    redis: aioredis.Redis,
) -> None:
    claims = AlertGroups(redis)
    await claims.claim("oncall", "g", ["a1"], "job1")
    await redis.hset(keys.job("job1"), "doc", '{"conversation_id": "c1"}')
    # set_conversation failed (Redis blipped after the job was stored)
    joined = await claims.claim("oncall", "g", ["a1", "a2"], "job2")
    assert (joined.decision, joined.conversation_id) == ("follow_up", "c1")
