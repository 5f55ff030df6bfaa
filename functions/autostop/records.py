"""The agent state record and the start lease, both kept in SSM parameters.

The agent writes its record (DESIGN.md, "Agent state record"); the start
function writes the lease, the time of the last start request. Readers are
forgiving: a missing, unparsable or foreign record is treated as absent, which
the stop rule then handles as "agent silent" (never as "idle").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from autostop import aws
from autostop.clock import iso, parse_time

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


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def json_object(text: str | None) -> dict[str, Any] | None:
    """A stored JSON document as a dict; None when absent, malformed or not an object."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def parse_agent_record(text: str | None, instance_id: str) -> AgentRecord | None:
    """Parse the agent's JSON; None when absent, malformed, or for another instance."""
    data = json_object(text)
    if data is None:
        return None
    heartbeat = parse_time(data.get("heartbeat_at"))
    if heartbeat is None:
        return None
    record_instance = data.get("instance_id")
    if isinstance(record_instance, str) and record_instance and record_instance != instance_id:
        return None
    gpu = data.get("gpu_utilization_pct")
    return AgentRecord(
        instance_id=record_instance if isinstance(record_instance, str) else None,
        boot_at=parse_time(data.get("boot_at")),
        heartbeat_at=heartbeat,
        comfyui_ready=data.get("comfyui_ready") is True,
        ready_at=parse_time(data.get("ready_at")),
        queue_running=_int(data.get("queue_running")),
        queue_pending=_int(data.get("queue_pending")),
        gpu_utilization_pct=float(gpu)
        if isinstance(gpu, int | float) and not isinstance(gpu, bool)
        else None,
        sessions=_int(data.get("sessions")),
        last_activity_at=parse_time(data.get("last_activity_at")),
        images_completed=_int(data.get("images_completed")),
    )


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


def read_agent_record(parameter: str, instance_id: str) -> AgentRecord | None:
    return parse_agent_record(get_parameter(parameter), instance_id)


def read_lease(parameter: str) -> datetime | None:
    """Time of the last start request, or None."""
    data = json_object(get_parameter(parameter))
    return parse_time(data.get("requested_at")) if data is not None else None


def write_lease(parameter: str, now: datetime, request_id: str | None) -> None:
    """Record a start request; the stop rule keeps the instance for IDLE_MINUTES after it."""
    value = json.dumps({"v": 1, "requested_at": iso(now), "request_id": request_id}, sort_keys=True)
    aws.client("ssm").put_parameter(Name=parameter, Value=value, Type="String", Overwrite=True)
