"""The agent state record and the start lease, both kept in SSM parameters.

The agent writes its record (docs/design.md#agent-state-record); the start
function writes the lease, the time of the last start request. Readers are
forgiving: a missing, unparsable or foreign record is treated as absent, which
the stop rule then handles as "agent silent" (never as "idle").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from autostop import aws
from autostop.clock import iso, parse_time
from autostop.errors import QUOTE_LIMIT, quote

#: A record whose boot is this much older than the instance's launch is from an earlier boot.
BOOT_TOLERANCE = timedelta(minutes=2)


@dataclass(frozen=True)
class AgentRecord:
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


#: Record versions this reader knows (the agent writes 2 from the "installing" phase on; 1 before).
KNOWN_VERSIONS = (1, 2)
PHASES = ("installing", "serving")
#: A time this far ahead of the function's clock is not believed (clock skew allowance).
FUTURE_TOLERANCE = timedelta(seconds=60)
#: The counts the stop rule reads; each must be a whole number >= 0 (a whole float such as 2.0 is read).
REQUIRED_COUNTS = ("queue_running", "queue_pending", "sessions")


class InvalidRecord(ValueError):
    """The record exists but does not say what its writer meant: never read it as idle."""


def _count(data: dict[str, Any], key: str, *, required: bool) -> int:
    """A whole number >= 0; a whole float (2.0) reads as that number; anything else is invalid."""
    if key not in data:
        if required:
            raise InvalidRecord(f"{key} is missing")
        return 0
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRecord(f"{key} must be a whole number, got {quote(value)}")
    if isinstance(value, float) and not value.is_integer():  # also inf and nan
        raise InvalidRecord(f"{key} must be a whole number, got {quote(value)}")
    if value < 0:
        raise InvalidRecord(f"{key} must not be negative, got {quote(value)}")
    return int(value)


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


def json_object(text: str | None) -> dict[str, Any] | None:
    """A stored JSON document as a dict; None when absent, malformed, too deeply nested or not an object."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class RecordReading:
    """What the agent-state parameter holds: a valid record, nothing usable (missing) or an invalid one."""

    record: AgentRecord | None
    #: "ok", "missing" (absent, the Terraform placeholder, or another instance's) or "invalid".
    status: str
    #: Why the record is missing or invalid (for the log).
    problem: str | None = None


def inspect_agent_record(text: str | None, instance_id: str, now: datetime | None = None) -> RecordReading:
    """Validate the agent's JSON (v 1 or 2). ``now`` enables the future-time check (the functions pass it)."""
    if not text:
        return RecordReading(None, "missing", "no agent state record")
    data = json_object(text)
    if data is None:
        return RecordReading(None, "invalid", f"not a JSON object: {quote(text)}")
    if set(data) <= {"v"} and data.get("v") == 1:
        return RecordReading(None, "missing", "the placeholder Terraform created (the agent never wrote)")
    record_instance = data.get("instance_id")
    if isinstance(record_instance, str) and record_instance and record_instance != instance_id:
        return RecordReading(None, "missing", f"a record of another instance ({quote(record_instance)})")
    try:
        return RecordReading(_validated(data, now), "ok")
    except InvalidRecord as exc:
        return RecordReading(None, "invalid", str(exc))


def _validated(data: dict[str, Any], now: datetime | None) -> AgentRecord:
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
        # Distrusted rather than invalid (contract): a missing or future start counts from the launch.
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


def parse_agent_record(text: str | None, instance_id: str, now: datetime | None = None) -> AgentRecord | None:
    """The valid record, or None when absent, invalid, or for another instance."""
    return inspect_agent_record(text, instance_id, now).record


def get_parameter(name: str) -> str | None:
    """An SSM parameter's value; None when the parameter does not exist."""
    try:
        response = aws.client("ssm").get_parameter(Name=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return None
        raise
    value: str = response["Parameter"]["Value"]
    return value


def read_agent_state(parameter: str, instance_id: str, now: datetime | None = None) -> RecordReading:
    return inspect_agent_record(get_parameter(parameter), instance_id, now)


def read_agent_record(parameter: str, instance_id: str, now: datetime | None = None) -> AgentRecord | None:
    return read_agent_state(parameter, instance_id, now).record


@dataclass(frozen=True)
class LeaseReading:
    requested_at: datetime | None
    #: Why a stored lease was not believed (a future time), for the log.
    problem: str | None = None


def read_lease_reading(parameter: str, now: datetime | None = None) -> LeaseReading:
    """The last start request; a lease in the future (beyond the tolerance) is ignored, never kept up."""
    data = json_object(get_parameter(parameter))
    moment = parse_time(data.get("requested_at")) if data is not None else None
    if moment is not None and now is not None and moment > now + FUTURE_TOLERANCE:
        return LeaseReading(
            None, f"lease requested_at {iso(moment)} is in the future (now {iso(now)}): ignored"
        )
    return LeaseReading(moment)


def read_lease(parameter: str, now: datetime | None = None) -> datetime | None:
    """Time of the last start request, or None."""
    return read_lease_reading(parameter, now).requested_at


def write_lease(parameter: str, now: datetime, request_id: str | None) -> None:
    """Record a start request; the stop rule keeps the instance for IDLE_MINUTES after it."""
    value = json.dumps({"v": 1, "requested_at": iso(now), "request_id": request_id}, sort_keys=True)
    aws.client("ssm").put_parameter(Name=parameter, Value=value, Type="String", Overwrite=True)


#: A stop intent this young means "a stop is under way" (the stop function's timeout is 60 s).
STOP_INTENT_FRESH = timedelta(seconds=90)


@dataclass(frozen=True)
class StopIntent:
    """The stop function's note "about to stop", written BEFORE its last lease read.

    A start whose lease write came too late for that read sees the note (it reads it after its
    own write) and does not answer "running" for a machine that is about to stop.
    """

    at: datetime
    request_id: str | None
    #: None while StopInstances may still follow; then "stopped", "declined", ...
    outcome: str | None

    def under_way(self, now: datetime) -> bool:
        age = now - self.at
        return self.outcome is None and -FUTURE_TOLERANCE <= age <= STOP_INTENT_FRESH


def _put(parameter: str, document: dict[str, Any]) -> None:
    value = json.dumps(document, sort_keys=True)
    aws.client("ssm").put_parameter(Name=parameter, Value=value, Type="String", Overwrite=True)


def write_stop_intent(
    parameter: str, at: datetime, request_id: str | None, outcome: str | None = None
) -> None:
    _put(parameter, {"v": 1, "at": iso(at), "request_id": request_id, "outcome": outcome})


def read_stop_intent(parameter: str) -> StopIntent | None:
    """The last stop intent; None when absent or malformed (then no stop is known to be under way)."""
    data = json_object(get_parameter(parameter))
    at = parse_time(data.get("at")) if data is not None else None
    if data is None or at is None:
        return None
    request_id, outcome = data.get("request_id"), data.get("outcome")
    return StopIntent(
        at=at,
        request_id=request_id if isinstance(request_id, str) else None,
        outcome=None if outcome is None else str(outcome)[:QUOTE_LIMIT],
    )


def read_silent_note(parameter: str) -> datetime | None:
    """The launch time of the boot whose silent agent was already alerted about, or None."""
    data = json_object(get_parameter(parameter))
    return parse_time(data.get("launch_time")) if data is not None else None


def write_silent_note(parameter: str, launch_time: datetime | None, now: datetime) -> None:
    _put(parameter, {"v": 1, "launch_time": iso(launch_time), "alerted_at": iso(now)})
