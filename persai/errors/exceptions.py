"""PersAI's exception tree: what the API answers (its HTTP status), or how a job ends.

PersAIError                      every error PersAI raises on purpose (500 unless below)
├── InvalidRequest               400: the request is well-formed JSON but makes no sense
│   └── UnknownModel             400: a model that the stack does not serve
├── Unauthenticated              401: no credentials, or Perses did not accept them
│   └── SealError                401: sealed credentials cannot be opened (tampered with, or
│                                     sealed with another PERSAI_SECRET_KEY): sign in again
├── Forbidden                    403
├── NotFound                     404: unknown, or somebody else's (never leak existence)
├── Conflict                     409
├── PayloadTooLarge              413
├── TooManyRequests              429 (with Retry-After)
├── UpstreamError                502: a dependency answered, but wrongly
│   └── ModelProviderError       the model provider failed after retries
├── ServiceUnavailable           503: a dependency is down (with Retry-After)
│   ├── StoreUnavailable         Redis
│   ├── PersesUnavailable        Perses
│   └── ModelUnavailable         Llama Stack
├── Superseded                   a worker's write for an attempt of a job that is over: it
│                                stops that attempt (never an HTTP answer)
└── TooManyEvents                a job emitted more events than PERSAI_MAX_EVENTS_PER_JOB: it
                                 fails (never an HTTP answer)

The tools' errors are another tree, returned to the model instead of raised through the loop
(`persai.agent.tools`): ToolError, and below it UpstreamStatusError (an upstream answered an
HTTP error) and EndpointNotAllowed. Library errors are mapped at the boundary (Redis:
`store_errors`; Perses: `persai.credentials`, `persai.server.token_validator`).
"""

from __future__ import annotations


class PersAIError(Exception):
    """Base of every error PersAI raises on purpose; carries its HTTP status and error type."""

    status_code: int = 500
    error_type: str = "internal_error"

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class InvalidRequest(PersAIError):
    status_code = 400
    error_type = "invalid_request"


class UnknownModel(InvalidRequest):
    error_type = "unknown_model"


class Unauthenticated(PersAIError):
    status_code = 401
    error_type = "unauthenticated"


class SealError(Unauthenticated):
    """Sealed credentials could not be opened: tampered with, truncated, or another key."""

    error_type = "credentials_unreadable"


class Forbidden(PersAIError):
    status_code = 403
    error_type = "forbidden"


class NotFound(PersAIError):
    status_code = 404
    error_type = "not_found"


class Conflict(PersAIError):
    status_code = 409
    error_type = "conflict"


class PayloadTooLarge(PersAIError):
    status_code = 413
    error_type = "payload_too_large"


class TooManyRequests(PersAIError):
    status_code = 429
    error_type = "rate_limited"


class UpstreamError(PersAIError):
    status_code = 502
    error_type = "upstream_error"


class ModelProviderError(UpstreamError):
    """The model provider kept failing (429/5xx after retries, or a bad answer)."""

    error_type = "model_provider_error"


class ServiceUnavailable(PersAIError):
    status_code = 503
    error_type = "service_unavailable"


class StoreUnavailable(ServiceUnavailable):
    error_type = "store_unavailable"


class PersesUnavailable(ServiceUnavailable):
    error_type = "perses_unavailable"


class ModelUnavailable(ServiceUnavailable):
    """Llama Stack (or whatever serves the Responses API) cannot be reached."""

    error_type = "model_unavailable"


class Superseded(PersAIError):
    """A write of a job's attempt that is no longer the job's current one: another worker took
    the job over (this one's lease lapsed), or the job ended meanwhile. Nothing was written."""

    error_type = "superseded"


class TooManyEvents(PersAIError):
    """A job emitted as many events as a job may hold (PERSAI_MAX_EVENTS_PER_JOB): it is
    stopped, with room kept for the events of its end."""

    error_type = "too_many_events"
