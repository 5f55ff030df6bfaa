"""Parse and validate the events the functions receive. Bad input -> RequestError."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from autostop.errors import RequestError

WAIT_MODES = ("none", "running", "ready")
#: The longest a start call may wait (the start function's timeout leaves room beyond it).
MAX_TIMEOUT_S = 600
DEFAULT_TIMEOUT_S = {"none": 0, "running": 120, "ready": 300}
MAX_REASON_LENGTH = 500


def _object(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        kind = "null" if event is None else type(event).__name__
        raise RequestError("InvalidEvent", f"the event must be a JSON object, got {kind}")
    return event


def _reject_unknown(event: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(event) - allowed)
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        accepted = ", ".join(repr(k) for k in sorted(allowed)) or "none"
        raise RequestError("UnknownKeys", f"unknown key(s) {names}; accepted keys: {accepted}")


@dataclass(frozen=True)
class StartRequest:
    wait: str = "none"
    timeout_s: float = 0


def parse_start(event: Any) -> StartRequest:
    data = _object(event)
    _reject_unknown(data, {"wait", "timeout_s"})
    wait = data.get("wait", "none")
    if wait not in WAIT_MODES:
        raise RequestError("InvalidWait", f"'wait' must be one of {', '.join(WAIT_MODES)}; got {wait!r}")
    timeout = data.get("timeout_s", DEFAULT_TIMEOUT_S[wait])
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise RequestError("InvalidTimeout", f"'timeout_s' must be a number of seconds; got {timeout!r}")
    if not 0 <= timeout <= MAX_TIMEOUT_S:
        raise RequestError(
            "InvalidTimeout", f"'timeout_s' must be between 0 and {MAX_TIMEOUT_S}; got {timeout!r}"
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


def _sns_trigger(records: Any) -> StopTrigger:
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        raise RequestError("InvalidEvent", "'Records' must be a non-empty list of SNS records")
    sns = records[0].get("Sns")
    if records[0].get("EventSource") != "aws:sns" or not isinstance(sns, dict):
        raise RequestError("InvalidEvent", "only SNS records are accepted by the stop function")
    try:
        message = json.loads(sns.get("Message") or "")
    except ValueError:
        message = None
    if isinstance(message, dict) and "AlarmName" in message:
        return StopTrigger(
            "alarm-sns",
            alarm_name=str(message["AlarmName"]),
            alarm_state=message.get("NewStateValue"),
        )
    return StopTrigger("sns", reason=str(sns.get("Subject") or "SNS notification"))


def parse_stop(event: Any) -> StopTrigger:
    """Recognise the trigger. None of them is trusted: unless forced, idleness is verified."""
    data = _object(event)
    if data.get("source") == "aws.cloudwatch" and "alarmData" in data:
        alarm = data.get("alarmData") or {}
        state = alarm.get("state", {}) if isinstance(alarm, dict) else {}
        return StopTrigger(
            "alarm",
            alarm_name=str(alarm.get("alarmName")) if isinstance(alarm, dict) else None,
            alarm_state=state.get("value") if isinstance(state, dict) else None,
        )
    if "Records" in data:
        return _sns_trigger(data["Records"])
    if data.get("source") == "aws.events" or data.get("detail-type") == "Scheduled Event":
        return StopTrigger("schedule")
    _reject_unknown(data, {"force", "reason"})
    force = data.get("force", False)
    if not isinstance(force, bool):
        raise RequestError("InvalidForce", f"'force' must be true or false; got {force!r}")
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON_LENGTH:
        raise RequestError(
            "InvalidReason", f"'reason' must be a string of at most {MAX_REASON_LENGTH} characters"
        )
    return StopTrigger("manual", force=force, reason=reason.strip())


# --- the cost functions -----------------------------------------------------------------------------

_BUDGET_ANCHORS = ("AWS Budget Notification", "AWSBudgets", "AWS Budgets")


@dataclass(frozen=True)
class BudgetNotice:
    """One AWS Budgets notification delivered through SNS (plain text, as Budgets sends it)."""

    kind: str  # "ACTUAL", "FORECASTED" or "UNKNOWN"
    budget_name: str | None
    amount_usd: float | None
    threshold_usd: float | None
    subject: str


def _money(pattern: str, text: str) -> float | None:
    found = re.search(pattern, text, flags=re.IGNORECASE)
    if not found:
        return None
    try:
        return float(found.group(1).replace(",", ""))
    except ValueError:
        return None


def parse_budget_message(subject: str, message: str) -> BudgetNotice | None:
    """Read a Budgets notification; None when the text is not one (it must carry a Budgets anchor)."""
    try:
        data = json.loads(message)
    except ValueError:
        data = None
    if isinstance(data, dict):  # some relays forward a JSON rendering of the notification
        kind = str(data.get("notificationType") or data.get("NotificationType") or "").upper()
        name = data.get("budgetName") or data.get("BudgetName")
        if not kind and not name:
            return None
        amount = data.get("actualAmount") or data.get("ActualAmount")
        return BudgetNotice(
            kind if kind in ("ACTUAL", "FORECASTED") else "UNKNOWN",
            str(name) if name else None,
            float(amount) if isinstance(amount, int | float) and not isinstance(amount, bool) else None,
            None,
            subject,
        )
    text = f"{subject}\n{message}"
    if not any(anchor in text for anchor in _BUDGET_ANCHORS):
        return None
    kind_match = re.search(r"Alert Type:\s*(ACTUAL|FORECASTED)", text, flags=re.IGNORECASE) or re.search(
        r"\b(ACTUAL|FORECASTED) Cost\b", text
    )
    name = re.search(r"Budget Name:\s*(\S[^\r\n]*)", text)
    return BudgetNotice(
        kind=kind_match.group(1).upper() if kind_match else "UNKNOWN",
        budget_name=name.group(1).strip() if name else None,
        amount_usd=_money(r"(?:ACTUAL|FORECASTED) Amount:\s*\$?\s*([\d,]+(?:\.\d+)?)", text)
        or _money(r"associated with this budget is \$\s*([\d,]+(?:\.\d+)?)", text),
        threshold_usd=_money(r"Alert Threshold:\s*[><=]*\s*\$\s*([\d,]+(?:\.\d+)?)", text),
        subject=subject,
    )


def parse_budget(event: Any) -> list[BudgetNotice]:
    """SNS records carrying Budgets notifications; anything else is refused (nothing changes)."""
    data = _object(event)
    records = data.get("Records")
    if not isinstance(records, list) or not records:
        raise RequestError("InvalidEvent", "the budget function takes SNS records from the budget topic")
    notices = []
    for record in records:
        sns = record.get("Sns") if isinstance(record, dict) else None
        if (
            not isinstance(record, dict)
            or record.get("EventSource") != "aws:sns"
            or not isinstance(sns, dict)
        ):
            raise RequestError("InvalidEvent", "only SNS records are accepted by the budget function")
        notice = parse_budget_message(str(sns.get("Subject") or ""), str(sns.get("Message") or ""))
        if notice is None:
            raise RequestError(
                "NotABudgetNotification",
                "the SNS message is not an AWS Budgets notification; nothing was done",
            )
        notices.append(notice)
    return notices


@dataclass(frozen=True)
class ReportRequest:
    send: bool = True


def parse_report(event: Any) -> ReportRequest:
    """An EventBridge schedule, or a manual ``{}`` / ``{"send": false}`` (build the report only)."""
    data = _object(event)
    if data.get("source") == "aws.events" or data.get("detail-type") == "Scheduled Event":
        return ReportRequest()
    _reject_unknown(data, {"send"})
    send = data.get("send", True)
    if not isinstance(send, bool):
        raise RequestError("InvalidSend", f"'send' must be true or false; got {send!r}")
    return ReportRequest(send=send)
