"""The one canonical text of a time (audit hashes and exports depend on it)."""

from __future__ import annotations

from datetime import datetime, timezone


def iso(value: datetime) -> str:
    """UTC, microseconds, ``+00:00``; a naive time is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")
