"""What the platform does, independent of transport.

The service's handlers and the client's in-process transport both call these
methods with the caller's :class:`~jupyter_mlplat.identity.Identity`; nothing
here knows about HTTP or JupyterHub.
"""

from __future__ import annotations

from .. import __version__
from ..identity import Identity
from ..settings import MlplatSettings
from .models import DescribeHealth, DescribeMe


class PlatformOperations:
    """The platform's operations for one settings object (one per process)."""

    def __init__(self, settings: MlplatSettings):
        self.settings = settings

    def health(self, caller: Identity | None = None) -> DescribeHealth:
        return DescribeHealth(status="ok", version=__version__)

    def me(self, caller: Identity, kind: str = "user") -> DescribeMe:
        return DescribeMe.from_identity(caller, kind=kind)
