"""User-facing errors: one sentence saying what was wrong and what to do.

Magics print the message of an :class:`MlplatError` instead of a traceback;
anything else is a bug and keeps its traceback.
"""


class MlplatError(Exception):
    """A mistake or an unavailable dependency that the user can act on."""


class UsageError(MlplatError):
    """Malformed arguments to a magic or function."""


class NotFoundError(MlplatError):
    """A named thing (feature view, experiment, run...) does not exist."""


class PermissionDenied(MlplatError):
    """The user is not allowed to act on this team's resource."""


class ServiceUnavailable(MlplatError):
    """A backend (tracking server, feature store...) could not be reached in time."""
