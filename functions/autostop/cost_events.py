"""Parse the cost functions' events: AWS Budgets notifications (via SNS) and report requests."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from autostop_contract import Code, quote

from autostop.errors import RequestError
from autostop.events import _object, _reject_unknown

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


def _finite(value: Any) -> float | None:
    """A finite number as a float; None for anything else (a bool, an int too big for a float, inf)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def parse_budget_message(subject: str, message: str) -> BudgetNotice | None:
    """Read a Budgets notification; None when the text is not one (it must carry a Budgets anchor)."""
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to read
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
            _finite(amount),
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
        raise RequestError(Code.INVALID_EVENT, "the budget function takes SNS records from the budget topic")
    notices = []
    for record in records:
        sns = record.get("Sns") if isinstance(record, dict) else None
        if (
            not isinstance(record, dict)
            or record.get("EventSource") != "aws:sns"
            or not isinstance(sns, dict)
        ):
            raise RequestError(Code.INVALID_EVENT, "only SNS records are accepted by the budget function")
        subject, message = sns.get("Subject"), sns.get("Message")
        notice = parse_budget_message(
            subject if isinstance(subject, str) else "", message if isinstance(message, str) else ""
        )
        if notice is None:
            raise RequestError(
                Code.NOT_A_BUDGET_NOTIFICATION,
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
        raise RequestError(Code.INVALID_SEND, f"'send' must be true or false; got {quote(send)}")
    return ReportRequest(send=send)
