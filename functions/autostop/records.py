"""The agent state record and the start lease, both kept in SSM parameters.

The agent writes its record (docs/design.md#agent-state-record); the start
function writes the lease, the time of the last start request. Readers are
forgiving: a missing, unparsable or foreign record is treated as absent, which
the stop rule then handles as "agent silent" (never as "idle").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from autostop_contract import (
    FUTURE_TOLERANCE,
    QUOTE_LIMIT,
    AgentRecord,
    InvalidRecord,
    is_placeholder,
    iso,
    parse_time,
    quote,
    read_record,
)
from botocore.exceptions import ClientError

from autostop import aws

# The record's fields, types, versions and validation are the contract's (autostop_contract, shared
# with the agent); this module reads and writes the SSM parameters that hold it and the lease.


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
    if is_placeholder(data):
        return RecordReading(None, "missing", "the placeholder Terraform created (the agent never wrote)")
    record_instance = data.get("instance_id")
    if isinstance(record_instance, str) and record_instance and record_instance != instance_id:
        return RecordReading(None, "missing", f"a record of another instance ({quote(record_instance)})")
    try:
        return RecordReading(read_record(data, now), "ok")
    except InvalidRecord as exc:
        return RecordReading(None, "invalid", str(exc))


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
