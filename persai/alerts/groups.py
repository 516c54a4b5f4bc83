"""Alert groups in Redis: one investigation per firing group, whichever API replica is asked.

Alertmanager posts a group again every `group_interval` (when it changed) and `repeat_interval`
(when it did not), and an operator may run several replicas of PersAI behind one address. So
the decision "new investigation, follow-up, or the one already running" is one Lua script over
two keys:

persai:alert:group:{sha256(receiver, groupKey)}    hash: conversation (the group's; '' while
        its first job is being stored), job (the latest), jobs (JSON list), fingerprints (JSON
        list of every alert seen firing), job_at (when the latest was claimed, Unix s), `a:{job
        id}` (the fingerprints that job's claim added, JSON), and
        `c:{sha256(firing fingerprints)}`: the job that answers exactly that set of firing
        alerts and when it was claimed ("id unix-s")
persai:alert:resolved:{job id}   when the job's group was resolved (Unix s), for a job that was
        running then (its notification says so)

A resolved group is forgotten at once: if its alerts fire again, that is a new investigation.

A claim whose job was never stored (its API replica died between the claim and the job) is
undone by the next post once `STALE_CLAIM_S` have passed, as if it had not been made; a group
whose first job was stored without its conversation being written takes it from that job.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from persai.jobs import keys, redis_errors

STALE_CLAIM_S = 30
MAX_JOBS_PER_GROUP = 50
"""Follow-ups end there: a group that keeps changing is answered by its latest job."""
GROUP_TTL_S = 7 * 86_400
"""A group unheard of for a week is forgotten (Alertmanager resends a firing one sooner)."""

# KEYS: group. ARGV: candidate job id, firing fingerprints (JSON list, sorted), TTL (s),
# the job key prefix, stale claim age (s), the claim's field, the most jobs a group starts.
# Returns {decision, job id, conversation, new fingerprints (JSON)}.
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1])
local function live(id, at)
  return redis.call('EXISTS', ARGV[4] .. id) == 1 or now - tonumber(at) < tonumber(ARGV[5])
end
local held = redis.call('HGET', KEYS[1], ARGV[6])
if held then
  local id, at = string.match(held, '^(%S+) (%S+)$')
  if id and live(id, at) then
    return {'same', id, redis.call('HGET', KEYS[1], 'conversation') or ''}
  end
end
local latest = redis.call('HGET', KEYS[1], 'job')
if latest and not live(latest, redis.call('HGET', KEYS[1], 'job_at') or '0') then
  -- the latest claim's job was never stored (its replica died): undo that claim
  local dead = latest
  local jobs = cjson.decode(redis.call('HGET', KEYS[1], 'jobs') or '[]')
  table.remove(jobs)
  local added = {}
  for _, fp in ipairs(cjson.decode(redis.call('HGET', KEYS[1], 'a:' .. dead) or '[]')) do
    added[fp] = true
  end
  if #jobs == 0 then
    redis.call('DEL', KEYS[1])
    latest = nil
  else
    local kept = {}
    for _, fp in ipairs(cjson.decode(redis.call('HGET', KEYS[1], 'fingerprints') or '[]')) do
      if not added[fp] then kept[#kept + 1] = fp end
    end
    latest = jobs[#jobs]
    redis.call('HSET', KEYS[1], 'job', latest, 'jobs', cjson.encode(jobs),
      'fingerprints', #kept > 0 and cjson.encode(kept) or '[]')
    redis.call('HDEL', KEYS[1], 'a:' .. dead)
  end
end
local conversation = redis.call('HGET', KEYS[1], 'conversation')
if conversation == '' and latest and redis.call('EXISTS', ARGV[4] .. latest) == 1 then
  -- its job was stored but the conversation was not written beside it: read it from the job
  local doc = redis.call('HGET', ARGV[4] .. latest, 'doc')
  local stored = doc and cjson.decode(doc).conversation_id
  if type(stored) == 'string' and stored ~= '' then
    conversation = stored
    redis.call('HSET', KEYS[1], 'conversation', conversation)
  end
end
local known = {}
for _, fp in ipairs(cjson.decode(redis.call('HGET', KEYS[1], 'fingerprints') or '[]')) do
  known[fp] = true
end
local new = {}
for _, fp in ipairs(cjson.decode(ARGV[2])) do
  if not known[fp] then new[#new + 1] = fp end
end
local jobs = cjson.decode(redis.call('HGET', KEYS[1], 'jobs') or '[]')
if latest and (#new == 0 or conversation == '' or #jobs >= tonumber(ARGV[7])) then
  redis.call('HSET', KEYS[1], ARGV[6], latest .. ' ' .. now)
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return {'same', latest, conversation or ''}
end
local decision = conversation and 'follow_up' or 'new'
local all = {}
for fp in pairs(known) do all[#all + 1] = fp end
for _, fp in ipairs(new) do all[#all + 1] = fp end
table.sort(all)
jobs[#jobs + 1] = ARGV[1]
redis.call('HSET', KEYS[1], 'job', ARGV[1], 'jobs', cjson.encode(jobs),
  'fingerprints', cjson.encode(all), 'conversation', conversation or '')
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[1], ARGV[6], ARGV[1] .. ' ' .. now, 'job_at', now,
  'a:' .. ARGV[1], cjson.encode(new))
return {decision, ARGV[1], conversation or '', cjson.encode(new)}
"""

# KEYS: group. Its jobs (JSON), the group deleted in the same step.
_RESOLVE = """
local jobs = redis.call('HGET', KEYS[1], 'jobs')
redis.call('DEL', KEYS[1])
return jobs
"""

# KEYS: group. ARGV: the job id a claim made, the fingerprints it added (JSON), its field.
# Undoes that claim while it is the group's latest (its job could not be stored).
_RELEASE = """
if redis.call('HGET', KEYS[1], 'job') ~= ARGV[1] then return 0 end
local jobs = cjson.decode(redis.call('HGET', KEYS[1], 'jobs') or '[]')
table.remove(jobs)
if #jobs == 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
local added = {}
for _, fp in ipairs(cjson.decode(ARGV[2])) do added[fp] = true end
local kept = {}
for _, fp in ipairs(cjson.decode(redis.call('HGET', KEYS[1], 'fingerprints') or '[]')) do
  if not added[fp] then kept[#kept + 1] = fp end
end
redis.call('HSET', KEYS[1], 'job', jobs[#jobs], 'jobs', cjson.encode(jobs))
redis.call('HSET', KEYS[1], 'fingerprints', #kept > 0 and cjson.encode(kept) or '[]')
redis.call('HDEL', KEYS[1], ARGV[3], 'a:' .. ARGV[1])
return 1
"""

Decision = Literal["new", "follow_up", "same"]


@dataclass(frozen=True)
class Claim:
    decision: Decision
    job_id: str
    conversation_id: str
    """'' for a new group (its first job creates the conversation)."""
    new_fingerprints: tuple[str, ...] = ()


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def group_key(receiver: str, group: str) -> str:
    return f"{keys.PREFIX}:alert:group:{_digest(receiver, group)}"


def _field(fingerprints: list[str]) -> str:
    """The group's field that holds the claim on exactly these firing alerts."""
    return f"c:{_digest(*sorted(fingerprints))}"


def resolved_key(job_id: str) -> str:
    return f"{keys.PREFIX}:alert:resolved:{job_id}"


class AlertGroups:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._claim = redis.register_script(_CLAIM)
        self._resolve = redis.register_script(_RESOLVE)
        self._release = redis.register_script(_RELEASE)

    async def claim(
        self, receiver: str, group: str, fingerprints: list[str], candidate: str
    ) -> Claim:
        """Whether `candidate` (a job id not stored yet) investigates these firing alerts:
        `new` (a new group), `follow_up` (alerts joined it), or `same` (another job does)."""
        names = [group_key(receiver, group)]
        argv: list[str | int] = [candidate, json.dumps(sorted(fingerprints)), GROUP_TTL_S]
        argv += [f"{keys.PREFIX}:job:", STALE_CLAIM_S, _field(fingerprints)]
        argv.append(MAX_JOBS_PER_GROUP)
        async with redis_errors():
            reply = await self._claim(keys=names, args=argv)
        decision, job_id, conversation = (str(part) for part in reply[:3])
        new = tuple(json.loads(reply[3])) if len(reply) > 3 else ()
        return Claim(decision, job_id, conversation, new)  # type: ignore[arg-type]

    async def release(
        self, receiver: str, group: str, fingerprints: list[str], made: Claim
    ) -> None:
        """Undo `made` (for `fingerprints`), whose job could not be stored: the next post of
        the group claims again instead of being answered with a job that does not exist."""
        argv: list[str | int] = [made.job_id, json.dumps(list(made.new_fingerprints))]
        argv.append(_field(fingerprints))
        async with redis_errors():
            await self._release(keys=[group_key(receiver, group)], args=argv)

    async def set_conversation(self, receiver: str, group: str, conversation_id: str) -> None:
        async with redis_errors():
            await self._redis.hset(group_key(receiver, group), "conversation", conversation_id)

    async def resolve(self, receiver: str, group: str, at: float, ttl_s: int) -> list[str]:
        """Forget the group, remembering for `ttl_s` that its jobs were resolved at `at`; its
        job ids, oldest first ([] for a group never seen or already resolved)."""
        async with redis_errors():
            jobs = await self._resolve(keys=[group_key(receiver, group)])
            found = [str(job) for job in json.loads(jobs)] if jobs else []
            if found:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for job in found:
                        pipe.set(resolved_key(job), repr(at), ex=ttl_s)
                    await pipe.execute()
        return found

    async def resolved_at(self, job_id: str) -> float | None:
        async with redis_errors():
            at = await self._redis.get(resolved_key(job_id))
        return float(at) if at is not None else None
