"""PersAI's errors and their mapping to HTTP responses."""

from persai.errors.exception_handlers import error_response, install
from persai.errors.exceptions import (
    Conflict,
    Forbidden,
    InvalidRequest,
    ModelProviderError,
    ModelUnavailable,
    NotFound,
    PayloadTooLarge,
    PersAIError,
    PersesUnavailable,
    SealError,
    ServiceUnavailable,
    StoreUnavailable,
    Superseded,
    TooManyEvents,
    TooManyRequests,
    Unauthenticated,
    UnknownModel,
    UpstreamError,
)
from persai.errors.store_errors import store_unavailable

__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidRequest",
    "ModelProviderError",
    "ModelUnavailable",
    "NotFound",
    "PayloadTooLarge",
    "PersAIError",
    "PersesUnavailable",
    "SealError",
    "ServiceUnavailable",
    "StoreUnavailable",
    "Superseded",
    "TooManyEvents",
    "TooManyRequests",
    "Unauthenticated",
    "UnknownModel",
    "UpstreamError",
    "error_response",
    "install",
    "store_unavailable",
]
