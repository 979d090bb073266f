"""The one error table: what went wrong, as one sentence, with its HTTP status and code.

Every layer raises these. Each class carries the HTTP status the service answers
with, a stable machine ``code`` that travels in the JSON error body
(``{"error": "<sentence>", "code": "conflict"}``) and the CLI's exit code, so a
caller sees the same exception in-process and over HTTP (the HTTP client re-raises
the class named by ``code``). Magics print the message instead of a traceback;
anything that is not an :class:`MlplatError` is a bug and keeps its traceback.

==================  ======  ===============  ====
class               status  code             exit
==================  ======  ===============  ====
UsageError          400     usage            2
Unauthenticated     401     unauthenticated  3
PermissionDenied    403     forbidden        3
NotFoundError       404     not_found        4
ConflictError       409     conflict         5
TooLarge            413     too_large        2
ServiceUnavailable  503     unavailable      6
MlplatError         500     error            1
==================  ======  ===============  ====
"""

from __future__ import annotations


class MlplatError(Exception):
    """A mistake or an unavailable dependency that the user can act on."""

    http_status = 500
    code = "error"
    exit_code = 1

    @property
    def message(self) -> str:
        return str(self)


class UsageError(MlplatError):
    """Malformed arguments to a magic, a function or a REST call."""

    http_status, code, exit_code = 400, "usage", 2


class Unauthenticated(MlplatError):
    """No credentials, or credentials nobody recognises."""

    http_status, code, exit_code = 401, "unauthenticated", 3


class PermissionDenied(MlplatError):
    """The caller is not allowed to act on this (another team's resource, a missing role)."""

    http_status, code, exit_code = 403, "forbidden", 3


class NotFoundError(MlplatError):
    """A named thing (feature view, experiment, run, request...) does not exist."""

    http_status, code, exit_code = 404, "not_found", 4


class ConflictError(MlplatError):
    """The thing exists but is not in a state that allows this (already decided, changed)."""

    http_status, code, exit_code = 409, "conflict", 5


class TooLarge(MlplatError):
    """A request body or a field is larger than the configured limit."""

    http_status, code, exit_code = 413, "too_large", 2


class ServiceUnavailable(MlplatError):
    """A dependency (tracking server, database, platform service...) could not be reached."""

    http_status, code, exit_code = 503, "unavailable", 6


ERROR_CLASSES: tuple[type[MlplatError], ...] = (
    UsageError,
    Unauthenticated,
    PermissionDenied,
    NotFoundError,
    ConflictError,
    TooLarge,
    ServiceUnavailable,
    MlplatError,
)
_BY_CODE = {cls.code: cls for cls in ERROR_CLASSES}
_BY_STATUS = {cls.http_status: cls for cls in ERROR_CLASSES}


def error_for(code: str | None, status: int) -> type[MlplatError]:
    """The class of an error body's ``code`` (else the one of its HTTP status)."""
    if code in _BY_CODE:
        return _BY_CODE[code]
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return UsageError if 400 <= status < 500 else MlplatError


def from_error_body(status: int, body: dict) -> MlplatError:
    """Rebuild the exception a service answered with (``{"error", "code"}``)."""
    message = body.get("error") or f"HTTP {status}."
    return error_for(body.get("code"), status)(message)
