"""Time, injected: handlers take a Clock so tests never sleep or read the wall clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def parse_time(value: object) -> datetime | None:
    """Parse an ISO-8601 UTC time (``...Z`` or with offset); None when absent or malformed.

    Also None for a time that cannot be held in UTC (year 1 with a positive offset, year 9999 with
    a negative one: ``astimezone`` overflows) and for a time outside years 2000..9998, whose
    arithmetic (``+ timedelta``) could overflow further on: no writer of ours produces either.
    """
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return parsed if 2000 <= parsed.year <= 9998 else None


def iso(moment: datetime | None) -> str | None:
    """Format as UTC ISO-8601 with a ``Z`` and whole seconds."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
