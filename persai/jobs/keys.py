"""The Redis key layout: every key PersAI writes is named here (and written through these names).

Celery's and kombu's own keys (the queue's list, the unacknowledged messages) are named in
`persai.queue`.

persai:job:{id}                hash: status, owner, doc (the Job as JSON, status excluded)
                               attempt (the running attempt, which fences its writes),
                               message (the delivery tag of its latest queue message)
persai:job:{id}:events         stream of events (fields: event, data)
persai:job:{id}:credentials    sealed forwarded credentials (string, with a TTL)
persai:job:{id}:cancel         set when a cancel was asked (string, with a TTL)
persai:job:{id}:lease          the worker holding the job (string, short TTL, heartbeat)
persai:user:{owner}:active     set of the owner's unfinished (queued or running) job ids
persai:user:{owner}:rate:{minute}   the owner's submissions in that minute (Unix minutes),
                               a counter kept two minutes
persai:user:{owner}:jobs       sorted set of the owner's job ids by creation time (Unix s); its
                               entries and itself expire a day after the jobs' records do
persai:user:{owner}:streams    sorted set of the owner's open event streams by the end of their
                               lease (Unix ms), renewed while they stream; expires with the last
persai:conversation:{id}       hash: owner, created_at, title (expires a retention period
                               after the conversation's last use, as do its messages)
persai:conversation:{id}:messages   list of JSON messages (the history a follow-up sees)
persai:user:{owner}:conversations   sorted set of conversation ids by last use (Unix s);
                               expires with the newest
persai:queued                  set of job ids that are queued (the queue's depth)
persai:running                 set of job ids that are running (for crash recovery)
persai:enqueued                sorted set of queued job ids by when their message was sent
                               (Unix s), for the sweep of queued jobs whose message was lost
persai:cancel                  pub/sub channel: job ids whose cancel was asked
persai:reaper                  the worker that looks for lost jobs now (string, short TTL)
persai:workers                 hash: worker id -> last heartbeat (Unix s by Redis's clock, TIME);
                               a worker silent for a day leaves it
persai:auth:{sha256}           cached verdict of Perses on a token (JSON, with a TTL; see
                               `persai.server.token_validator`)
persai:auth:{sha256}:lock      the nonce of the API process asking Perses about that token
persai:turn:{owner}:{conversation}:{sha256}   job id of a compatibility-API turn (short TTL),
                               so that a retried POST re-attaches instead of asking twice
"""

PREFIX = "persai"
CANCEL_CHANNEL = f"{PREFIX}:cancel"
RUNNING = f"{PREFIX}:running"
ENQUEUED = f"{PREFIX}:enqueued"
QUEUED = f"{PREFIX}:queued"
REAPER = f"{PREFIX}:reaper"
AUTH_PREFIX = f"{PREFIX}:auth:"
WORKERS = f"{PREFIX}:workers"


def job(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def events(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:events"


def credentials(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:credentials"


def cancel(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:cancel"


def lease(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}:lease"


def user_jobs(owner: str) -> str:
    return f"{PREFIX}:user:{owner}:jobs"


def conversation(conversation_id: str) -> str:
    return f"{PREFIX}:conversation:{conversation_id}"


def conversation_messages(conversation_id: str) -> str:
    return f"{PREFIX}:conversation:{conversation_id}:messages"


def user_conversations(owner: str) -> str:
    return f"{PREFIX}:user:{owner}:conversations"


def user_streams(owner: str) -> str:
    return f"{PREFIX}:user:{owner}:streams"


def user_active(owner: str) -> str:
    return f"{PREFIX}:user:{owner}:active"


def user_rate(owner: str, minute: int) -> str:
    return f"{PREFIX}:user:{owner}:rate:{minute}"


def turn(owner: str, conversation_id: str, digest: str) -> str:
    return f"{PREFIX}:turn:{owner}:{conversation_id}:{digest}"


def reader_wake(process: str) -> str:
    """Stream (one entry, short TTL) that wakes an API process's event reader (`fanout.Pump`)
    out of its blocking read when the process starts following one more job."""
    return f"{PREFIX}:reader:{process}:wake"


def auth(digest: str) -> str:
    return f"{AUTH_PREFIX}{digest}"


def auth_lock(verdict_key: str) -> str:
    """The lock beside the verdict key `auth(digest)`."""
    return f"{verdict_key}:lock"
