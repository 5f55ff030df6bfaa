"""Parse and validate the events the functions receive. Bad input -> RequestError."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from autostop_contract import Code, clip, quote

from autostop.errors import RequestError

WAIT_MODES = ("none", "running", "ready")
#: The longest a start call may wait (the start function's timeout leaves room beyond it).
MAX_TIMEOUT_S = 600
DEFAULT_TIMEOUT_S = {"none": 0, "running": 120, "ready": 300}
MAX_REASON_LENGTH = 500


def _object(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        kind = "null" if event is None else type(event).__name__
        raise RequestError(Code.INVALID_EVENT, f"the event must be a JSON object, got {kind}")
    return event


def _reject_unknown(event: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(event) - allowed)
    if unknown:
        names = clip(", ".join(quote(k) for k in unknown))
        accepted = ", ".join(repr(k) for k in sorted(allowed)) or "none"
        raise RequestError(Code.UNKNOWN_KEYS, f"unknown key(s) {names}; accepted keys: {accepted}")


@dataclass(frozen=True)
class StartRequest:
    wait: str = "none"
    timeout_s: float = 0


def parse_start(event: Any) -> StartRequest:
    data = _object(event)
    _reject_unknown(data, {"wait", "timeout_s"})
    wait = data.get("wait", "none")
    if wait not in WAIT_MODES:
        raise RequestError(
            Code.INVALID_WAIT, f"'wait' must be one of {', '.join(WAIT_MODES)}; got {quote(wait)}"
        )
    timeout = data.get("timeout_s", DEFAULT_TIMEOUT_S[wait])
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise RequestError(
            Code.INVALID_TIMEOUT, f"'timeout_s' must be a number of seconds; got {quote(timeout)}"
        )
    if not 0 <= timeout <= MAX_TIMEOUT_S:
        raise RequestError(
            Code.INVALID_TIMEOUT, f"'timeout_s' must be between 0 and {MAX_TIMEOUT_S}; got {quote(timeout)}"
        )
    return StartRequest(wait=wait, timeout_s=float(timeout))


def parse_status(event: Any) -> None:
    _reject_unknown(_object(event), set())


@dataclass(frozen=True)
class StopTrigger:
    kind: str  # "alarm", "alarm-sns", "sns", "schedule", "manual"
    force: bool = False
    reason: str = ""
    alarm_name: str | None = None
    alarm_state: str | None = None


def _text(value: Any, limit: int = 256) -> str | None:
    """A string field of an AWS event, cut to ``limit``; anything else is None."""
    return value[:limit] if isinstance(value, str) else None


def _sns_trigger(records: Any) -> StopTrigger:
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        raise RequestError(Code.INVALID_EVENT, "'Records' must be a non-empty list of SNS records")
    sns = records[0].get("Sns")
    if records[0].get("EventSource") != "aws:sns" or not isinstance(sns, dict):
        raise RequestError(Code.INVALID_EVENT, "only SNS records are accepted by the stop function")
    body = sns.get("Message")
    message: Any = None
    if isinstance(body, str):  # SNS delivers a string; anything else is not a CloudWatch alarm
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):
            message = None
    if isinstance(message, dict) and "AlarmName" in message:
        return StopTrigger(
            "alarm-sns",
            alarm_name=_text(message["AlarmName"]) or quote(message["AlarmName"]),
            alarm_state=_text(message.get("NewStateValue")),
        )
    return StopTrigger("sns", reason=_text(sns.get("Subject")) or "SNS notification")


def parse_stop(event: Any) -> StopTrigger:
    """Recognise the trigger. None of them is trusted: unless forced, idleness is verified."""
    data = _object(event)
    if data.get("source") == "aws.cloudwatch" and "alarmData" in data:
        alarm = data.get("alarmData")
        alarm = alarm if isinstance(alarm, dict) else {}
        state = alarm.get("state")
        return StopTrigger(
            "alarm",
            alarm_name=_text(alarm.get("alarmName")) or _text(data.get("alarmArn")),
            alarm_state=_text(state.get("value")) if isinstance(state, dict) else None,
        )
    if "Records" in data:
        return _sns_trigger(data["Records"])
    if data.get("source") == "aws.events" or data.get("detail-type") == "Scheduled Event":
        return StopTrigger("schedule")
    _reject_unknown(data, {"force", "reason"})
    force = data.get("force", False)
    if not isinstance(force, bool):
        raise RequestError(Code.INVALID_FORCE, f"'force' must be true or false; got {quote(force)}")
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON_LENGTH:
        raise RequestError(
            Code.INVALID_REASON, f"'reason' must be a string of at most {MAX_REASON_LENGTH} characters"
        )
    return StopTrigger("manual", force=force, reason=reason.strip())
