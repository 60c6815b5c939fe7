"""The one error hierarchy of the project.

Every error raised on purpose by the core, the nodes and the gateway is a
:class:`CreditError`. Each class knows the gRPC status code and the HTTP status it
leaves as, so one gRPC interceptor and one HTTP middleware can translate any of them;
anything else is a bug and leaves as INTERNAL / 500 with a generic message.

::

    CreditError                      INTERNAL            500
    ├── InvalidInput                 INVALID_ARGUMENT    400   (carries field violations)
    │   ├── InvalidIdentifier        INVALID_ARGUMENT    400
    │   ├── UnknownName              INVALID_ARGUMENT    400   (region, domain, scope, profile)
    │   ├── InvalidWindow            INVALID_ARGUMENT    400
    │   └── BatchTooLarge            INVALID_ARGUMENT    400
    ├── NotFound                     NOT_FOUND           404
    ├── PermissionDenied             PERMISSION_DENIED   403
    ├── Unauthenticated              UNAUTHENTICATED     401
    ├── FailedPrecondition           FAILED_PRECONDITION 409
    ├── TooManyAttempts              RESOURCE_EXHAUSTED  429   (carries retry_after seconds)
    └── Unavailable                  UNAVAILABLE         503

The gRPC code is kept as its name (``"INVALID_ARGUMENT"``) so that this module, like the
rest of the core, imports no gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One reason a request was rejected, tied to the field it concerns."""

    field: str
    description: str


class CreditError(Exception):
    """Base of every deliberate error; also the fallback for internal faults."""

    grpc_code = "INTERNAL"
    http_status = 500
    title = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(CreditError):
    """The request or input is malformed; nothing was stored or changed."""

    grpc_code = "INVALID_ARGUMENT"
    http_status = 400
    title = "Invalid input"

    def __init__(self, detail: str, violations: tuple[FieldViolation, ...] = ()) -> None:
        super().__init__(detail)
        self.violations = violations

    @classmethod
    def for_field(cls, field: str, description: str) -> Self:
        """An error about a single field, with that field as its only violation."""
        return cls(f"{field}: {description}", (FieldViolation(field, description),))


class InvalidIdentifier(InvalidInput):
    """A unified social credit code or resident ID number fails validation."""

    title = "Invalid subject identifier"


class UnknownName(InvalidInput):
    """A region, domain, scope or profile name that the system does not know."""

    title = "Unknown name"


class InvalidWindow(InvalidInput):
    """A report window that the profile does not offer, or an impossible date."""

    title = "Invalid report window"


class BatchTooLarge(InvalidInput):
    """A batch with more subjects than one call accepts."""

    title = "Batch too large"


class PayloadTooLarge(InvalidInput):
    """A request body larger than the route takes; nothing was read into storage."""

    http_status = 413
    title = "Payload too large"


class NotFound(CreditError):
    grpc_code = "NOT_FOUND"
    http_status = 404
    title = "Not found"


class PermissionDenied(CreditError):
    grpc_code = "PERMISSION_DENIED"
    http_status = 403
    title = "Permission denied"


class Unauthenticated(CreditError):
    grpc_code = "UNAUTHENTICATED"
    http_status = 401
    title = "Authentication required"


class FailedPrecondition(CreditError):
    grpc_code = "FAILED_PRECONDITION"
    http_status = 409
    title = "Failed precondition"


class TooManyAttempts(CreditError):
    """Too many failed attempts (logins); try again after ``retry_after`` seconds."""

    grpc_code = "RESOURCE_EXHAUSTED"
    http_status = 429
    title = "Too many attempts"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(CreditError):
    grpc_code = "UNAVAILABLE"
    http_status = 503
    title = "Service unavailable"
