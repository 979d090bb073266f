"""Cron expressions of schedules: checked, and their firing times in a time zone.

Five fields (minute hour day-of-month month day-of-week), read by croniter; times are
computed in the schedule's IANA time zone (so "0 9 * * *" in Europe/Paris stays 09:00
across daylight-saving changes) and stored in UTC. A schedule may not fire more often than
``min_interval`` seconds: the gaps between its next firings are checked over a year's worth
of samples, so "*/1 * * * *" and "0,1 9 * * *" are both refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import UsageError

_SAMPLES = 600  # firings looked at for the minimum-interval check


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``UTC``, ``Europe/Paris``…), else a UsageError."""
    try:
        if not name or "\0" in name or name.startswith(("/", ".")) or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"{name!r} is not a known time zone; use an IANA name such as 'UTC' or 'Europe/Paris'."
        ) from None


def check(expression: str, timezone: str = "UTC", min_interval: float = 300.0) -> str:
    """``expression`` normalized (single spaces) if valid and not too frequent."""
    from croniter import croniter

    normalized = " ".join(str(expression or "").split())
    fields = normalized.split(" ") if normalized else []
    if len(fields) != 5:
        raise UsageError(
            f"{expression!r} is not a cron expression of five fields (minute hour day month "
            "weekday), e.g. '0 6 * * *' for 06:00 every day."
        )
    if not croniter.is_valid(normalized):
        raise UsageError(
            f"{expression!r} is not a valid cron expression; e.g. '*/15 * * * *' is every "
            "15 minutes, '0 6 * * 1-5' is 06:00 on weekdays."
        )
    tz = zone(timezone)
    gap = smallest_gap(normalized, tz)
    if gap is not None and gap < min_interval:
        raise UsageError(
            f"{normalized!r} fires every {_duration(gap)} at times; schedules may fire at "
            f"most every {_duration(min_interval)} (MlplatSettings.jobs_min_interval_seconds)."
        )
    return normalized


def smallest_gap(expression: str, tz: ZoneInfo) -> float | None:
    """The shortest time between two of the next firings, in seconds (None: fewer than two)."""
    from croniter import croniter

    it = croniter(expression, datetime(2026, 1, 1, tzinfo=tz))
    previous, smallest = None, None
    for _ in range(_SAMPLES):
        try:
            current = it.get_next(datetime)
        except (StopIteration, ValueError):  # e.g. "0 0 30 2 *" never fires
            break
        if previous is not None:
            gap = (current - previous).total_seconds()
            smallest = gap if smallest is None else min(smallest, gap)
        previous = current
    return smallest


def next_after(expression: str, timezone: str, after: datetime) -> datetime:
    """The first firing strictly after ``after`` (aware), in UTC."""
    from croniter import croniter

    local = after.astimezone(zone(timezone))
    return croniter(expression, local).get_next(datetime).astimezone(UTC)


def due(expression: str, timezone: str, since: datetime, now: datetime, limit: int = 1000):
    """Firings in ``[since, now]`` (UTC, oldest first; at most ``limit``) and the next one
    after ``now``. ``since`` is itself a firing (the schedule's recorded next one)."""
    fired: list[datetime] = []
    current = since
    while current <= now and len(fired) < limit:
        fired.append(current)
        current = next_after(expression, timezone, current)
    while current <= now:  # past the limit: only the next one matters
        current = next_after(expression, timezone, now)
    return fired, current


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"
