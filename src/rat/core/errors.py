"""Domain errors. The web layer maps each to an HTTP status and the API error envelope."""

from __future__ import annotations

from typing import Any


class RatError(Exception):
    """Base of every error RAT reports to a client."""

    status = 500
    code = "INTERNAL"

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class Invalid(RatError):
    status = 400
    code = "INVALID_ARGUMENT"


class ValidationFailed(RatError):
    """Publish-time validation failure (422) carrying per-file results in `extra['validation']`."""

    status = 422
    code = "INVALID_ARGUMENT"


class Unauthenticated(RatError):
    status = 401
    code = "UNAUTHENTICATED"


class Forbidden(RatError):
    status = 403
    code = "FORBIDDEN"


class NotFound(RatError):
    status = 404
    code = "NOT_FOUND"


class AlreadyExists(RatError):
    status = 409
    code = "ALREADY_EXISTS"


class FailedPrecondition(RatError):
    status = 409
    code = "FAILED_PRECONDITION"


class TooLarge(RatError):
    status = 413
    code = "INVALID_ARGUMENT"


class UnsupportedMedia(RatError):
    status = 415
    code = "INVALID_ARGUMENT"


class RateLimited(RatError):
    status = 429
    code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotImplementedFeature(RatError):
    status = 501
    code = "NOT_IMPLEMENTED"


class Unavailable(RatError):
    status = 503
    code = "UNAVAILABLE"


class Busy(Unavailable):
    """Capacity, not an outage: nothing free within the deadline; the client retries soon."""

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(RatError):
    status = 504
    code = "DEADLINE_EXCEEDED"


ERROR_TYPES = {
    400: "VALIDATION", 401: "AUTHENTICATION", 403: "AUTHORIZATION", 404: "NOT_FOUND",
    405: "VALIDATION", 409: "CONFLICT", 413: "VALIDATION", 415: "VALIDATION", 422: "VALIDATION",
    429: "RATE_LIMIT", 500: "INTERNAL", 501: "INTERNAL", 503: "UNAVAILABLE", 504: "INTERNAL",
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "INTERNAL" if status >= 500 else "VALIDATION")


def default_code(status: int) -> str:
    return {401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
            501: "NOT_IMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}.get(
        status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")


def envelope(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code or default_code(status), "type": error_type(status),
                      "message": message}}
