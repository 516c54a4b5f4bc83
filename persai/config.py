"""PersAI's settings: one typed object, read from the environment by the entry points only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_SECRET_KEY_BYTES = 32
"""PERSAI_SECRET_KEY's least length with authentication on (HKDF input for AES-GCM sealing)."""
_ORIGIN = re.compile(r"https?://[^/\s*?#]+")
"""An origin as browsers send it: scheme://host[:port], nothing after it."""


_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class Settings(BaseSettings):
    """Everything PersAI can be told, with the defaults `persai dev` runs with.

    Environment variables carry the `PERSAI_` prefix, except `PERSES_API_URL` and the model
    provider keys, which keep the names those projects use.
    """

    model_config = SettingsConfigDict(
        env_prefix="PERSAI_", extra="ignore", frozen=True, hide_input_in_errors=True
    )  # hidden: a configuration error must not print PERSAI_SECRET_KEY or a provider key

    # Where things are
    redis_url: str | None = None
    redis_sentinels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Redis Sentinels (`host:port,host:port`): when set, the API, the workers and the queue
    ask them for the master of `redis_master_name` and follow it when it fails over;
    PERSAI_REDIS_URL then gives only the database, user and password (its host is not used)."""
    redis_master_name: str = "persai"
    """The name the Sentinels monitor PersAI's Redis master under (`sentinel monitor NAME`)."""
    perses_api_url: AnyHttpUrl | None = Field(default=None, validation_alias="PERSES_API_URL")
    llama_stack_url: str | None = None
    datasources: Annotated[dict[str, AnyHttpUrl], NoDecode] = Field(default_factory=dict)
    """Direct Prometheus datasources by name (`name=url,name=url`), for running without Perses.
    A client names one as `/proxy/globaldatasources/{name}`; it never supplies a URL."""
    direct_datasources_with_perses: bool = False
    """Whether PERSAI_DATASOURCES stay on when Perses is configured (PERSES_API_URL): a direct
    datasource is queried without the user's token, so Perses permissions do not apply to it."""

    # Authentication
    auth: bool = True
    secret_key: SecretStr | None = None
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    auth_cache_ttl_s: int = 3600
    credentials_ttl_s: int = 86_400

    # Model
    model: str | None = None
    system_prompt: str | None = None
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    gemini_api_key: SecretStr | None = Field(default=None, validation_alias="GEMINI_API_KEY")
    anthropic_api_key: SecretStr | None = Field(default=None, validation_alias="ANTHROPIC_API_KEY")
    stack_state_dir: Path = Path(".persai/stack")

    # The agent's bounds (seconds unless named otherwise)
    max_steps: int = 8
    model_call_timeout_s: float = 120.0
    tool_call_timeout_s: float = 30.0
    investigation_timeout_s: float = 900.0
    tool_result_tokens: int = 2000
    tool_max_response_bytes: int = 20_000_000
    upstream_max_concurrency: int = Field(default=32, ge=1)
    """Requests one worker process has in flight to one datasource (or Perses) at once."""

    # Jobs and limits
    question_max_chars: int = 8000
    job_retention_s: int = 7 * 86_400
    max_events_per_job: int = 10_000
    max_running_per_user: int = 10
    submissions_per_minute: int = 60
    max_queue_depth: int = 10_000
    worker_concurrency: int = 200
    heartbeat_interval_s: float = 5.0
    heartbeat_timeout_s: float = 20.0
    requeue_grace_s: float = Field(default=60.0, gt=0)
    """A queued job whose queue message has been gone this long (lost, or taken by a worker
    that never started the job) is queued again with a new one."""
    compat_heartbeat_s: float = 10.0
    """Heartbeat interval of the plugin's turn streams (its SDK gives up after 30 s of silence
    before the first bytes; proxies close idle connections)."""
    worker_metrics_port: int = 9464
    """Each worker serves its metrics on this port (0: not at all)."""
    worker_metrics_host: str | None = None
    """The address workers serve their metrics on (None: every interface; `persai dev`: the
    loopback interface)."""
    streams_per_user: int = Field(default=20, ge=1)
    """Event streams (native `/events` and the plugin's turns) one user holds open at once,
    counted across API replicas (429 past it)."""
    conversations_per_user: int = Field(default=200, ge=1)
    """Conversations (the plugin's sessions among them) one user holds (429 past it)."""
    conversation_retention_s: int = Field(default=30 * 86_400, ge=1)
    """A conversation is deleted this long after its last use (its creation or its last
    question)."""

    # Alerts (see persai.alerts and the README's "Alerts")
    alerts_config: Path | None = None
    """A YAML or JSON file of Alertmanager receivers (credentials, datasource, identity,
    destinations); unset: no alert webhook."""
    alerts_notify_backoff_s: float = Field(default=5.0, gt=0)
    """The first retry of a failed notification waits this long, each next one twice as long."""
    alerts_notify_backoff_max_s: float = Field(default=300.0, gt=0)
    alerts_notify_give_up_s: float = Field(default=86_400.0, gt=0)
    """A notification not delivered this long after its investigation ended is given up."""
    alerts_notify_timeout_s: float = Field(default=10.0, gt=0)
    """One delivery attempt's deadline (connection and answer)."""
    alerts_readers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Perses users who may read every alert investigation (`alice,bob`)."""

    # Logging
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    # Conversations
    history_budget_tokens: int = Field(default=8000, ge=0)
    """What a follow-up's earlier turns may cost each model call, by PersAI's token estimate:
    past it, earlier tool results are shortened or left out first (0: no earlier turns)."""

    @field_validator("cors_origins", "alerts_readers", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        if "*" in origins:
            raise ValueError(
                "PERSAI_CORS_ORIGINS=* is refused: credentials are allowed, so every web site "
                "could use the signed-in user's Perses session; list the origins, e.g. "
                "PERSAI_CORS_ORIGINS=https://perses.example.com"
            )
        for origin in origins:
            if not _ORIGIN.fullmatch(origin.rstrip("/")):
                raise ValueError(
                    f"PERSAI_CORS_ORIGINS: {origin!r} is not an origin: write scheme://host[:port]"
                    ", e.g. https://perses.example.com (no path, no wildcard)"
                )
        return [origin.rstrip("/") for origin in origins]

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _split_sentinels(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, sentinels: list[str]) -> list[str]:
        for sentinel in sentinels:
            host, _, port = sentinel.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(
                    f"PERSAI_REDIS_SENTINELS: {sentinel!r} is not host:port, e.g. "
                    "PERSAI_REDIS_SENTINELS=sentinel-0:26379,sentinel-1:26379,sentinel-2:26379"
                )
        return sentinels

    @model_validator(mode="after")
    def _sentinels_need_a_database(self) -> Settings:
        """With Sentinels the URL only names the database (and credentials): default it."""
        if self.redis_sentinels and not self.redis_url:
            object.__setattr__(self, "redis_url", "redis://sentinel-master/0")
        return self

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """PERSAI_REDIS_SENTINELS as (host, port) pairs (none: Redis at PERSAI_REDIS_URL)."""
        return [
            (h.strip("[]"), int(p)) for h, _, p in (s.rpartition(":") for s in self.redis_sentinels)
        ]

    @field_validator("redis_url", mode="before")
    @classmethod
    def _check_redis_url(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None  # an empty variable means "none given"
        if isinstance(value, str) and not value.startswith(_REDIS_SCHEMES):
            raise ValueError(
                "PERSAI_REDIS_URL must be a Redis URL: redis://host:port/db, rediss:// (TLS) "
                "or unix:///path/to/redis.sock"
            )
        return value

    def required_redis_url(self) -> str:
        """PERSAI_REDIS_URL, which the API and the workers cannot run without (checked once,
        here: the factories take what this returns); ValueError when it is not set."""
        if self.redis_url is None:
            raise ValueError(
                "PERSAI_REDIS_URL is required (e.g. redis://localhost:6379/0; `persai dev` "
                "starts an embedded Redis)"
            )
        return self.redis_url

    @field_validator("perses_api_url", "alerts_config", mode="before")
    @classmethod
    def _empty_url_is_unset(cls, value: object) -> object:
        # compose passes `${PERSES_API_URL:-}`: an empty variable means "no Perses"
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _secret_key_with_authentication(self) -> Settings:
        """Authentication on (with a Perses) seals every job's credentials: without a key that
        is long enough the API would start, say it is ready and fail every job."""
        key = self.secret_key.get_secret_value() if self.secret_key is not None else ""
        if not self.auth or (self.perses_api_url is None and not key):
            return self
        size = len(key.encode())
        if size < MIN_SECRET_KEY_BYTES:
            what = f"is {size} bytes long" if key else "is not set"
            raise ValueError(
                f"PERSAI_SECRET_KEY {what}: with authentication on (PERSAI_AUTH=true) it must be "
                f"at least {MIN_SECRET_KEY_BYTES} bytes, e.g. PERSAI_SECRET_KEY=$(openssl rand "
                "-base64 32), the same for the API and every worker; or set PERSAI_AUTH=false"
            )
        return self

    @field_validator("datasources", mode="before")
    @classmethod
    def _split_datasources(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = (item.split("=", 1) for item in value.split(",") if item.strip())
            return {name.strip(): url.strip() for name, url in pairs}
        return value

    @property
    def perses_api_prefix(self) -> str:
        """Perses's `api_prefix`: the path of PERSES_API_URL without its last slash ("" for
        none), in front of every route Perses serves, its datasource proxy included."""
        if self.perses_api_url is None:
            return ""
        return (self.perses_api_url.path or "").rstrip("/")

    def allowed_origins(self) -> list[str]:
        """CORS origins: the configured ones, else the Perses origin."""
        if self.cors_origins:
            return self.cors_origins
        if self.perses_api_url is not None:
            url = self.perses_api_url
            port = f":{url.port}" if url.port not in (None, 80, 443) else ""
            return [f"{url.scheme}://{url.host}{port}"]
        return []
