"""The platform's own endpoints: health (public) and who the caller is."""

from __future__ import annotations

from ..api.base import ApiModel
from ..api.core import DescribeHealth, DescribeMe
from ..identity import Identity
from ..version import __version__
from .endpoints import Area, Context, endpoint


class DescribeHealthRequest(ApiModel):
    """``GET api/health`` takes nothing."""


class DescribeMeRequest(ApiModel):
    """``GET api/me`` takes nothing."""


def describe_me(identity: Identity, kind: str = "user") -> DescribeMe:
    return DescribeMe(
        user=identity.user,
        kind=kind,
        teams=list(identity.teams),
        roles=list(identity.roles),
        source=identity.source,
    )


def identity_of(me: DescribeMe) -> Identity:
    return Identity(user=me.user, teams=tuple(me.teams), source=me.source, roles=tuple(me.roles))


class CoreArea(Area):
    name = "core"

    @endpoint("GET", "api/health", DescribeHealthRequest, DescribeHealth, public=True)
    def health(self, context: Context | None, request: DescribeHealthRequest) -> DescribeHealth:
        """Whether the platform answers, and its version."""
        return DescribeHealth(status="ok", version=__version__)

    @endpoint("GET", "api/me", DescribeMeRequest, DescribeMe)
    def me(self, context: Context, request: DescribeMeRequest) -> DescribeMe:
        """The caller: user, teams, roles and where they came from."""
        return describe_me(context.identity, context.kind)
