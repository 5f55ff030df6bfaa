"""The contract between the on-instance agent and the Lambda functions, written once.

The agent (on the instance) and the functions (on Lambda) deploy separately but speak one language:
the agent state record (its fields, types, version and validation), the time format, how a number
read from outside is checked, and the error codes an answer carries. They are defined here and
nowhere else (docs/design.md#contract). This module uses the standard library only; each build
copies it in (the Lambda zip at its top level, the agent archive as ``contract/``), so neither side
imports the other's folder at run time. ``tests/contract/`` tests the writer against the reader.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

# ---- quoting a bad value -------------------------------------------------------------------------

#: How much of a bad value an error message or a log line quotes.
QUOTE_LIMIT = 100


def clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (never echo a huge input in full)."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr`` of a value, clipped."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # a pathologically nested value, an int too long to print
        text = f"<{type(value).__name__}>"
    return clip(text, limit)


# ---- time ----------------------------------------------------------------------------------------

#: Every time in a record, a lease or an answer: UTC, whole seconds, a ``Z``.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
#: Longer than any time a writer of ours produces: not parsed at all.
MAX_TIME_CHARS = 64


def iso(moment: datetime | None) -> str | None:
    """Format as UTC ISO-8601 with a ``Z`` and whole seconds (None stays None)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(value: object) -> datetime | None:
    """Parse an ISO-8601 time (``...Z`` or with an offset; no offset means UTC) to an aware UTC
    datetime; None when absent or malformed.

    Also None for a time that cannot be held in UTC (year 1 with a positive offset, year 9999 with
    a negative one: ``astimezone`` overflows) and for a time outside years 2000..9998, whose
    arithmetic (``+ timedelta``) could overflow further on: no writer of ours produces either.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_TIME_CHARS:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return parsed if 2000 <= parsed.year <= 9998 else None


# ---- numbers -------------------------------------------------------------------------------------


def bounded_number(raw: str, low: float, high: float) -> float:
    """A decimal number between ``low`` and ``high`` (inclusive) read from text (an environment
    variable, an SSM value). ValueError saying what is wrong: not a number, not finite, out of range.
    """
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"must be between {low:g} and {high:g}")
    return value


def whole_number(value: object) -> int | None:
    """A whole number >= 0 from JSON: an int, or a whole float (2.0 reads as 2); None for anything
    else (a bool, a string, a fraction, inf, nan, a negative number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():  # also inf and nan
        return None
    if value < 0:
        return None
    return int(value)


# ---- error codes ---------------------------------------------------------------------------------


class Code(StrEnum):
    """The error codes of a function's ``{"ok": false, "error": {"code": ...}}`` answer. Clients (the
    operator command, the n8n workflows) branch on these strings: a code is never renamed, only
    added. (Clients add codes of their own for what they see themselves: ComfyUI errors, timeouts.)"""

    INVALID_EVENT = "InvalidEvent"
    UNKNOWN_KEYS = "UnknownKeys"
    INVALID_WAIT = "InvalidWait"
    INVALID_TIMEOUT = "InvalidTimeout"
    INVALID_FORCE = "InvalidForce"
    INVALID_REASON = "InvalidReason"
    INVALID_SEND = "InvalidSend"
    NOT_A_BUDGET_NOTIFICATION = "NotABudgetNotification"
    INSTANCE_GONE = "InstanceGone"
    INSTANCE_STOPPING = "InstanceStopping"
    NO_CAPACITY = "NoCapacity"
    SPOT_INTERRUPTED = "SpotInterrupted"
    BUDGET_EXCEEDED = "BudgetExceeded"


#: The codes a client acts on (waits, retries later, tells the owner); the others are bad input.
#: The operator command and the n8n workflows each say what every one of these means.
ACTIONABLE = (
    Code.NO_CAPACITY,
    Code.INSTANCE_STOPPING,
    Code.SPOT_INTERRUPTED,
    Code.BUDGET_EXCEEDED,
    Code.INSTANCE_GONE,
)


# ---- the agent state record ----------------------------------------------------------------------

#: The version the agent writes (2: the "installing" phase); the readers know these.
RECORD_VERSION = 2
KNOWN_VERSIONS = (1, 2)
PHASES = ("installing", "serving")
#: The counts the stop rule reads; each must be a whole number >= 0.
REQUIRED_COUNTS = ("queue_running", "queue_pending", "sessions")
#: A time this far ahead of the reader's clock is not believed (clock skew allowance).
FUTURE_TOLERANCE = timedelta(seconds=60)
#: A record whose boot is this much older than the instance's launch is from an earlier boot.
BOOT_TOLERANCE = timedelta(minutes=2)


class InvalidRecord(ValueError):
    """The record exists but does not say what its writer meant: never read it as idle."""


@dataclass(frozen=True)
class AgentRecord:
    """The fields of the record that the functions act on (the agent may add others; readers ignore
    them)."""

    instance_id: str | None
    boot_at: datetime | None
    heartbeat_at: datetime
    comfyui_ready: bool
    ready_at: datetime | None
    queue_running: int
    queue_pending: int
    gpu_utilization_pct: float | None
    sessions: int
    last_activity_at: datetime | None
    images_completed: int
    #: "installing" while the first-boot install runs (record v2), else "serving".
    phase: str = "serving"
    install_started_at: datetime | None = None

    @property
    def queue_depth(self) -> int:
        return self.queue_running + self.queue_pending

    def is_fresh(self, now: datetime, stale_after_seconds: float) -> bool:
        """Written within the staleness window (3 heartbeats)."""
        return (now - self.heartbeat_at).total_seconds() <= stale_after_seconds

    def is_of_boot(self, launch_time: datetime | None) -> bool:
        """Written during the boot that started at ``launch_time`` (not an earlier one)."""
        if launch_time is None:
            return True
        if self.boot_at is not None:
            return self.boot_at >= launch_time - BOOT_TOLERANCE
        return self.heartbeat_at >= launch_time

    def is_current(self, now: datetime, stale_after_seconds: float, launch_time: datetime | None) -> bool:
        return self.is_fresh(now, stale_after_seconds) and self.is_of_boot(launch_time)


def record_document(record: AgentRecord, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The writer: the JSON object the agent stores for ``record`` (version RECORD_VERSION), with
    ``extra`` fields for people debugging (they may not shadow a contract field). While installing,
    nothing is served: ready, queue and sessions are written as false/0 whatever the record says."""
    if record.phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, got {quote(record.phase)}")
    installing = record.phase == "installing"
    document: dict[str, Any] = {
        "v": RECORD_VERSION,
        "instance_id": record.instance_id,
        "boot_at": iso(record.boot_at),
        "heartbeat_at": iso(record.heartbeat_at),
        "comfyui_ready": record.comfyui_ready and not installing,
        "ready_at": None if installing else iso(record.ready_at),
        "queue_running": 0 if installing else record.queue_running,
        "queue_pending": 0 if installing else record.queue_pending,
        "gpu_utilization_pct": record.gpu_utilization_pct,
        "sessions": 0 if installing else record.sessions,
        "last_activity_at": iso(record.last_activity_at),
        "images_completed": record.images_completed,
        "phase": record.phase,
        "install_started_at": iso(record.install_started_at) if installing else None,
    }
    for key, value in (extra or {}).items():
        if key in document:
            raise ValueError(f"extra field {key!r} would shadow a contract field")
        document[key] = value
    return document


def encode_record(document: dict[str, Any]) -> str:
    """The stored text of a record document: compact JSON."""
    return json.dumps(document, separators=(",", ":"))


def _count(data: dict[str, Any], key: str, *, required: bool) -> int:
    if key not in data:
        if required:
            raise InvalidRecord(f"{key} is missing")
        return 0
    value = data[key]
    number = whole_number(value)
    if number is None:
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if whole and not isinstance(value, bool) and value < 0:
            raise InvalidRecord(f"{key} must not be negative, got {quote(value)}")
        raise InvalidRecord(f"{key} must be a whole number, got {quote(value)}")
    return number


def _time(data: dict[str, Any], key: str, now: datetime | None, *, required: bool = False) -> datetime | None:
    """An ISO time or null; present but unreadable, or in the future (beyond the tolerance): invalid."""
    value = data.get(key)
    if value is None:
        if required:
            raise InvalidRecord(f"{key} is missing")
        return None
    parsed = parse_time(value)
    if parsed is None:
        raise InvalidRecord(f"{key} is not an ISO-8601 time: {quote(value)}")
    if now is not None and parsed > now + FUTURE_TOLERANCE:
        raise InvalidRecord(f"{key} {iso(parsed)} is in the future (now {iso(now)})")
    return parsed


def is_placeholder(data: dict[str, Any]) -> bool:
    """The document Terraform creates before the agent ever writes (``{"v": 1}``)."""
    return set(data) <= {"v"} and data.get("v") == 1


def read_record(data: dict[str, Any], now: datetime | None = None) -> AgentRecord:
    """The reader: validate a record document (v1 or v2). ``now`` enables the future-time check.
    InvalidRecord says what is wrong; a reader must then distrust the record, never read it as idle."""
    version = data.get("v")
    if isinstance(version, bool) or version not in KNOWN_VERSIONS:
        raise InvalidRecord(f"unknown record version v={quote(version)} (known: 1, 2)")
    record_instance = data.get("instance_id")
    if record_instance is not None and not isinstance(record_instance, str):
        raise InvalidRecord(f"instance_id must be a string, got {quote(record_instance)}")
    ready = data.get("comfyui_ready")
    if not isinstance(ready, bool):
        raise InvalidRecord(f"comfyui_ready must be true or false, got {quote(ready)}")
    gpu = data.get("gpu_utilization_pct")
    if gpu is not None and (
        isinstance(gpu, bool) or not isinstance(gpu, int | float) or not math.isfinite(gpu) or gpu < 0
    ):
        raise InvalidRecord(f"gpu_utilization_pct must be a number >= 0 or null, got {quote(gpu)}")
    phase = "serving"
    install_started_at = None
    if version == 2:
        phase = data.get("phase")  # type: ignore[assignment]
        if phase not in PHASES:
            raise InvalidRecord(f"phase must be one of {', '.join(PHASES)}, got {quote(phase)}")
        # Distrusted rather than invalid: a missing or future start counts from the launch.
        install_started_at = parse_time(data.get("install_started_at"))
        if install_started_at is not None and now is not None and install_started_at > now + FUTURE_TOLERANCE:
            install_started_at = None
    return AgentRecord(
        instance_id=record_instance or None,
        boot_at=_time(data, "boot_at", now),
        heartbeat_at=_time(data, "heartbeat_at", now, required=True),  # type: ignore[arg-type]
        comfyui_ready=ready,
        ready_at=_time(data, "ready_at", now),
        queue_running=_count(data, "queue_running", required=True),
        queue_pending=_count(data, "queue_pending", required=True),
        gpu_utilization_pct=None if gpu is None else float(gpu),
        sessions=_count(data, "sessions", required=True),
        last_activity_at=_time(data, "last_activity_at", now),
        images_completed=_count(data, "images_completed", required=False),
        phase=phase,
        install_started_at=install_started_at,
    )
