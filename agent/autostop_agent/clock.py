"""Time, injected: the agent never reads the clock or sleeps except through a Clock.

``now()`` is the wall clock (UTC) and is used only for the timestamps written in
the state record. Every interval (heartbeat, metrics, idle time, backoff) is
measured on ``monotonic()``, so a wall-clock jump (NTP step, manual change)
neither delays nor hastens anything.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


def iso(moment: datetime | None) -> str | None:
    """UTC ISO-8601 with a ``Z`` and whole seconds (the record's time format)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: object) -> datetime | None:
    """Parse a record time; None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
