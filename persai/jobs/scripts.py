"""The job store's Lua scripts: each step of a job's life that must happen at once.

`CREATE_JOB` is a Lua function, so that the submission script (`persai.jobs.submission`) stores
a job exactly as `JobStore.create` does, in the same step as its admission.
"""

from __future__ import annotations

from typing import NamedTuple

# Lua: whether the job (hash KEYS[1]) is in `attempt` ('' for any); a job stored before attempts
# were recorded passes.
IN_ATTEMPT = """
local function in_attempt(attempt)
  if attempt == '' then return true end
  return tonumber(redis.call('HGET', KEYS[1], 'attempt') or attempt) == tonumber(attempt)
end
"""

# Lua: now, in Unix seconds, by Redis's clock (the one every process shares).
NOW = """
local function now()
  local time = redis.call('TIME')
  return tonumber(time[1]) + tonumber(time[2]) / 1000000
end
"""

# KEYS: job hash, event stream, queued set, running set, owner's active set, credentials, lease,
# cancel flag, the queue's list, the enqueued set. ARGV: job id, new status, doc, status event
# data, retention (s), attempt ('' for any), '1' to change only a job whose lease lapsed, queue
# message ('' for none) and its tag, the number of allowed statuses, the allowed statuses, then
# events to append before the status event (name, data, ...).
# The sets follow the status: they give the queue depth, the running jobs to watch for lost
# workers, each owner's number of unfinished jobs, and when each queued job's message was sent
# (`persai.jobs.sweep`). A job goes back to the queue with its message, in this step. A final
# status is followed by `done`, the last event of the stream, in the same step: no job ends
# without it. A finished job is kept for the retention period; its credentials and lease go at
# once.
TRANSITION = (
    IN_ATTEMPT
    + NOW
    + """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return false end
local allowed, count = false, tonumber(ARGV[10])
for i = 11, 10 + count do
  if ARGV[i] == current then allowed = true end
end
if not allowed or not in_attempt(ARGV[6]) then return false end
if ARGV[7] == '1' and redis.call('EXISTS', KEYS[7]) == 1 then return false end
local id, new = ARGV[1], ARGV[2]
redis.call('HSET', KEYS[1], 'status', new, 'doc', ARGV[3])
for i = 11 + count, #ARGV, 2 do
  redis.call('XADD', KEYS[2], '*', 'event', ARGV[i], 'data', ARGV[i + 1])
end
if new == 'queued' then
  redis.call('SADD', KEYS[3], id)
  redis.call('SREM', KEYS[4], id)
  redis.call('SADD', KEYS[5], id)
  if ARGV[8] ~= '' then
    redis.call('LPUSH', KEYS[9], ARGV[8])
  end
  redis.call('HSET', KEYS[1], 'message', ARGV[9])
  redis.call('ZADD', KEYS[10], now(), id)
elseif new == 'running' then
  redis.call('SREM', KEYS[3], id)
  redis.call('SADD', KEYS[4], id)
  redis.call('ZREM', KEYS[10], id)
else
  redis.call('SREM', KEYS[3], id)
  redis.call('SREM', KEYS[4], id)
  redis.call('SREM', KEYS[5], id)
  redis.call('ZREM', KEYS[10], id)
end
local entry = redis.call('XADD', KEYS[2], '*', 'event', 'status', 'data', ARGV[4])
if new ~= 'queued' and new ~= 'running' then
  redis.call('XADD', KEYS[2], '*', 'event', 'done', 'data', cjson.encode({status = new}))
  redis.call('DEL', KEYS[6], KEYS[7])
  for _, key in ipairs({KEYS[1], KEYS[2], KEYS[8]}) do
    redis.call('EXPIRE', key, ARGV[5])
  end
end
return entry
"""
)

# KEYS: job hash, event stream, queued set, running set, lease, enqueued set. ARGV: job id, doc,
# status event data, attempt, worker id, lease TTL (ms). A queued job starts its next attempt
# (the one after the stored one) with its lease, at once: of two workers holding messages for
# it, one starts it; a worker whose view of the job is older than the last attempt does not.
START = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return false end
local attempt = tonumber(ARGV[4])
if tonumber(redis.call('HGET', KEYS[1], 'attempt') or attempt - 1) ~= attempt - 1 then
  return false
end
redis.call('HSET', KEYS[1], 'status', 'running', 'doc', ARGV[2], 'attempt', attempt)
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('SET', KEYS[5], ARGV[5], 'PX', ARGV[6])
return redis.call('XADD', KEYS[2], '*', 'event', 'status', 'data', ARGV[3])
"""

# KEYS: each job's hash and lease, in pairs. ARGV: worker id, lease TTL (ms), each job's attempt
# ('' for any). Renews the leases of the jobs still running in those attempts; returns the
# positions (1...) of the others: their attempts are over (taken over, cancelled, finished).
RENEW = """
local over = {}
for n = 1, #KEYS / 2 do
  local job, attempt = KEYS[2 * n - 1], ARGV[2 + n]
  local stored = redis.call('HGET', job, 'attempt')
  if redis.call('HGET', job, 'status') == 'running'
      and (attempt == '' or tonumber(stored or attempt) == tonumber(attempt)) then
    redis.call('SET', KEYS[2 * n], ARGV[1], 'PX', ARGV[2])
  else
    over[#over + 1] = n
  end
end
return over
"""

# `create_job(k, a)`, k: job hash, event stream, owner's jobs, queued set, owner's active set,
# credentials, the queue's list, the enqueued set; a: job id, status, owner, doc, creation time
# (Unix s), status event data, sealed credentials ('' for none), their TTL (s), the index's
# cutoff (Unix s) and TTL (s), the queue message ('' for none) and its tag.
# A new job, all at once; returns its first event's id. The owner's index drops the jobs
# created before the cutoff (their records have expired) and lives as long as its newest. The
# job is queued in the same step, so it is never stored without its message. A call retried
# after its reply was lost finds the job and writes nothing twice.
CREATE_JOB = (
    NOW
    + """
local function create_job(k, a)
  if redis.call('EXISTS', k[1]) == 1 then
    local first = redis.call('XRANGE', k[2], '-', '+', 'COUNT', 1)[1]
    return first and first[1] or false
  end
  redis.call('HSET', k[1], 'status', a[2], 'owner', a[3], 'doc', a[4])
  redis.call('HSET', k[1], 'attempt', 0, 'message', a[12])
  local entry = redis.call('XADD', k[2], '*', 'event', 'status', 'data', a[6])
  redis.call('ZREMRANGEBYSCORE', k[3], '-inf', '(' .. a[9])
  redis.call('ZADD', k[3], a[5], a[1])
  redis.call('EXPIRE', k[3], a[10])
  redis.call('SADD', k[4], a[1])
  redis.call('SADD', k[5], a[1])
  if a[7] ~= '' then
    redis.call('SET', k[6], a[7], 'EX', a[8])
  end
  if a[11] ~= '' then
    redis.call('LPUSH', k[7], a[11])
  end
  redis.call('ZADD', k[8], now(), a[1])
  return entry
end
"""
)

# KEYS and ARGV: those of `create_job`.
CREATE = CREATE_JOB + "return create_job(KEYS, ARGV)"

# KEYS: job hash, event stream. ARGV: attempt ('' for any), doc ('' to leave it), event name,
# event data. The record's progress and the event that tells of it, at once and in one round
# trip; with an attempt, only while the job runs in that attempt (else false).
SAVE_AND_EMIT = (
    IN_ATTEMPT
    + """
if ARGV[1] ~= '' and (redis.call('HGET', KEYS[1], 'status') ~= 'running'
    or not in_attempt(ARGV[1])) then
  return false
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'doc', ARGV[2])
end
return redis.call('XADD', KEYS[2], '*', 'event', ARGV[3], 'data', ARGV[4])
"""
)

# KEYS: job hash, credentials. ARGV: sealed credentials, their TTL (s). Refreshed credentials
# are sealed again only while the job may still use them: a refresh that ends after the job
# did (its final transition deleted them) writes nothing.
KEEP_CREDENTIALS = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'queued' and status ~= 'running' then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return 1
"""

# KEYS: the workers' hash. ARGV: worker id, how long (s) a silent worker is remembered.
# The heartbeat is stamped with Redis's clock, the one every host shares: a worker's own clock
# may be off by any amount. The stamp goes first: Redis refuses it when out of memory.
BEAT = (
    NOW
    + """
local at = now()
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.3f', at))
local beats = redis.call('HGETALL', KEYS[1])
for i = 1, #beats, 2 do
  if (tonumber(beats[i + 1]) or 0) < at - tonumber(ARGV[2]) then
    redis.call('HDEL', KEYS[1], beats[i])
  end
end
"""
)


class ScriptCall(NamedTuple):
    """The keys and arguments of one call of a script (or of one of its Lua functions)."""

    keys: list[str]
    args: list[str]
