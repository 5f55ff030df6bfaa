"""Time, injected: the agent never reads the clock or sleeps except through a Clock.

``now()`` is the wall clock (UTC) and is used only for the timestamps written in
the state record. Every interval (heartbeat, metrics, idle time, backoff) is
measured on ``monotonic()``, so a wall-clock jump (NTP step, manual change)
neither delays nor hastens anything.

The record's time format (``iso``, ``parse_time``) is the contract's: ``autostop_contract``.
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
