"""Schemas of the platform's own endpoints: health and the caller's identity."""

from __future__ import annotations

from .base import ApiModel


class DescribeHealth(ApiModel):
    """``GET api/health``: the service is up."""

    status: str = "ok"
    version: str


class DescribeMe(ApiModel):
    """``GET api/me``: who the token belongs to, their teams and roles."""

    user: str
    kind: str = "user"
    teams: list[str]
    roles: list[str]
    source: str
