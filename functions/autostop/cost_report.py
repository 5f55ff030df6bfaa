"""The weekly cost report: what AWS billed (Cost Explorer) next to the project's own figures.

Cost Explorer gives month-to-date and last-7-days cost, filtered by the project's
cost-allocation tag (``COST_TAG_KEY``/``COST_TAG_VALUE``, once the owner activated the
tag in the Billing console) or else by the EC2 services of the whole account. UnblendedCost
nets credits and refunds into the figures (a promotional credit makes a busy month read $0),
so the cost queries exclude the charge types (dimension RECORD_TYPE) ``Credit`` and
``Refund``, and a third query reports them on their own line. The
usage ledger gives running hours, starts and images; with those come the cost per
image, the budgets' status and the hard cap's. When Cost Explorer cannot answer
(access denied, data unavailable, not enabled) the report still goes out with the
project's own estimate and says why. The email is plain text.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from autostop_contract import iso
from botocore.exceptions import BotoCoreError, ClientError

from autostop import aws, ec2, records
from autostop.config import Config
from autostop.ledger import Ledger, month_fraction_elapsed, month_start
from autostop.ledger import read as read_ledger

EC2_SERVICES = ("Amazon Elastic Compute Cloud - Compute", "EC2 - Other")
METRIC = "UnblendedCost"
#: RECORD_TYPE is Cost Explorer's "charge type" dimension ("The different types of charges such as
#: Reserved Instance (RI) fees, usage costs, tax refunds, and credits": API reference,
#: GetDimensionValues); filters combine with And/Not ("You can use multiple Expression types and the
#: logical operators AND/OR/NOT": API reference, Expression,
#: https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_Expression.html).
CREDIT_RECORD_TYPES = ("Credit", "Refund")
_CREDITS = {"Dimensions": {"Key": "RECORD_TYPE", "Values": list(CREDIT_RECORD_TYPES)}}


@dataclass(frozen=True)
class CostExplorerFigures:
    month_to_date_usd: float  # without credits and refunds
    last_7_days_usd: float  # without credits and refunds
    scope: str
    estimated: bool
    credits_month_usd: float = 0.0  # credits and refunds this month (negative amounts)


@dataclass
class Report:
    now: datetime
    explorer: CostExplorerFigures | None
    explorer_error: str | None
    ledger: Ledger | None
    own_estimate_usd: float | None
    running_since: datetime | None
    images_month: int
    month_hours: float
    month_starts: int
    week_hours: float
    week_starts: int
    week_images: int
    cap_tripped: bool = False
    cap_reason: str = ""
    cap_usd: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def spend_usd(self) -> float | None:
        """The best month-to-date figure: Cost Explorer's, else the own estimate."""
        return self.explorer.month_to_date_usd if self.explorer else self.own_estimate_usd

    @property
    def cost_per_image(self) -> float | None:
        spend = self.spend_usd
        return None if spend is None or self.images_month <= 0 else spend / self.images_month


def _days(now: datetime) -> tuple[str, str, str, str]:
    """Month start, today, 7 days ago (UTC dates; Cost Explorer's end date is exclusive)."""
    today = now.astimezone(UTC).date()
    first = month_start(now).date()
    return first.isoformat(), today.isoformat(), (today - timedelta(days=7)).isoformat(), today.isoformat()


def _filter(config: Config) -> tuple[dict[str, Any], str]:
    if config.cost_tag_key and config.cost_tag_value:
        return (
            {
                "Tags": {
                    "Key": config.cost_tag_key,
                    "Values": [config.cost_tag_value],
                    "MatchOptions": ["EQUALS"],
                }
            },
            f"costs tagged {config.cost_tag_key}={config.cost_tag_value}",
        )
    return (
        {"Dimensions": {"Key": "SERVICE", "Values": list(EC2_SERVICES)}},
        "all EC2 in the account (instance hours, volumes, public IPs); set COST_TAG_KEY/COST_TAG_VALUE "
        "once the Project tag is an active cost-allocation tag to count this project only",
    )


def _sum(response: dict[str, Any]) -> tuple[float, bool]:
    total, estimated = 0.0, False
    for period in response.get("ResultsByTime", []):
        amount = period.get("Total", {}).get(METRIC, {}).get("Amount")
        if amount is None:  # grouped answers carry their amounts in the groups
            amount = sum(float(g["Metrics"][METRIC]["Amount"]) for g in period.get("Groups", []))
        total += float(amount)
        estimated = estimated or bool(period.get("Estimated"))
    return total, estimated


def query_cost_explorer(config: Config, now: datetime) -> CostExplorerFigures:
    """Month to date and the last 7 full days without credits, then the month's credits and refunds
    on their own (three requests, $0.01 each; on the 1st of the month only the week)."""
    client = aws.client("ce")
    first, today, week_start, week_end = _days(now)
    scope_filter, scope = _filter(config)
    costs = {"And": [scope_filter, {"Not": _CREDITS}]}
    month = {"TimePeriod": {"Start": first, "End": today}, "Granularity": "MONTHLY", "Metrics": [METRIC]}
    week = {"TimePeriod": {"Start": week_start, "End": week_end}, "Granularity": "DAILY", "Metrics": [METRIC]}
    new_month = first == today  # the 1st of the month: nothing billed yet this month
    month_total, month_estimated = (
        (0.0, False) if new_month else _sum(client.get_cost_and_usage(**month, Filter=costs))
    )
    week_total, week_estimated = _sum(client.get_cost_and_usage(**week, Filter=costs))
    credits_total = (
        0.0
        if new_month
        else _sum(client.get_cost_and_usage(**month, Filter={"And": [scope_filter, _CREDITS]}))[0]
    )
    return CostExplorerFigures(
        round(month_total, 2),
        round(week_total, 2),
        scope,
        month_estimated or week_estimated,
        credits_month_usd=round(credits_total, 2),
    )


def build(config: Config, now: datetime) -> Report:
    explorer: CostExplorerFigures | None = None
    error: str | None = None
    try:
        explorer = query_cost_explorer(config, now)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Error")
        error = f"{code}: {exc.response.get('Error', {}).get('Message', '')}".strip().rstrip(":")
    except BotoCoreError as exc:
        error = f"{type(exc).__name__}: {exc}"

    instance = ec2.describe(config.instance_id)
    book = read_ledger(config.ledger_parameter, now) if config.ledger_parameter else None
    running = instance.state in ("pending", "running") and instance.launch_time is not None
    images = book.current.images if book else 0
    record = records.read_agent_record(config.agent_state_parameter, config.instance_id) if running else None
    if running and record and record.is_of_boot(instance.launch_time):
        images += record.images_completed
    own: float | None = None
    cap_state = None
    notes: list[str] = []
    if book is not None:
        from autostop import cap

        own = cap.estimate(config, now, book, instance).total
        if config.cap_parameter:
            cap_state = cap.read_state(config.cap_parameter)
    else:
        notes.append(
            "No usage ledger (LEDGER_PARAMETER unset): running hours, starts and images are unknown."
        )
    week_seconds, week_starts, week_images = book.last_days(now) if book else (0.0, 0, 0)
    return Report(
        now=now,
        explorer=explorer,
        explorer_error=error,
        ledger=book,
        own_estimate_usd=own,
        running_since=instance.launch_time if running else None,
        images_month=images,
        month_hours=book.current.hours if book else 0.0,
        month_starts=book.current.starts if book else 0,
        week_hours=week_seconds / 3600,
        week_starts=week_starts,
        week_images=week_images,
        cap_tripped=bool(cap_state and cap_state.tripped),
        cap_reason=cap_state.reason if cap_state else "",
        cap_usd=None
        if config.hard_cap_usd is None
        else config.hard_cap_usd + (cap_state.extra_for(now) if cap_state else 0.0),
        notes=notes,
    )


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.2f}"


def _signed_usd(value: float) -> str:
    """Credits are negative amounts in Cost Explorer: -$12.50, not $-12.50."""
    return ("-" if value < 0 else "") + f"${abs(value):,.2f}"


def _wrap(line: str, width: int = 78) -> str:
    """Plain-text mail: wrap long lines, continuation lines indented under the text."""
    if len(line) <= width:
        return line
    indent = " " * (len(line) - len(line.lstrip()))
    return textwrap.fill(
        line, width=width, subsequent_indent=indent + ("  " if indent else ""), break_on_hyphens=False
    )


def render(config: Config, report: Report) -> tuple[str, str]:
    """Subject and plain-text body."""
    r = report
    month_name = r.now.strftime("%B %Y")
    first, today, week_start, _ = _days(r.now)
    lines = [
        f"gpu-autostop weekly cost report, {r.now.strftime('%A %d %B %Y')} (UTC)",
        f"Instance {config.instance_id}"
        + (f", running since {iso(r.running_since)}" if r.running_since else ""),
        "",
        "WHAT AWS BILLED (Cost Explorer)",
    ]
    if r.explorer:
        lines += [
            f"  Month to date ({first} to {today}, excl.):  {_usd(r.explorer.month_to_date_usd)}",
            f"  Last 7 days ({week_start} to {today}, excl.): {_usd(r.explorer.last_7_days_usd)}",
            f"  Credits and refunds this month: {_signed_usd(r.explorer.credits_month_usd)} "
            "(not netted above)",
            f"  Scope: {r.explorer.scope}.",
        ]
        if r.explorer.estimated:
            lines.append("  AWS marks part of these figures as estimated; they settle within a day or two.")
    else:
        lines += [
            f"  Cost Explorer is unavailable ({r.explorer_error}).",
            "  The figures below are this project's own estimate. To get AWS's own figures, enable Cost "
            "Explorer in the Billing console and allow ce:GetCostAndUsage to the report function.",
        ]
    lines += ["", "USAGE (this project's own records)"]
    if r.ledger is not None:
        lines += [
            f"  {month_name}: {r.month_hours:.1f} running hours, {r.month_starts} starts, "
            f"{r.images_month} images",
            f"  Last 7 days: {r.week_hours:.1f} running hours, {r.week_starts} starts, "
            f"{r.week_images} images",
            f"  Own estimate month to date: {_usd(r.own_estimate_usd)} (instance time + fixed costs so far)",
        ]
        per_image = r.cost_per_image
        basis = "Cost Explorer" if r.explorer else "own estimate"
        lines.append(
            f"  Cost per image this month: {_usd(per_image)} ({basis})"
            if per_image is not None
            else "  Cost per image: no images this month yet."
        )
    lines += [*(f"  {note}" for note in r.notes), "", "BUDGETS"]
    spend = r.spend_usd
    elapsed = month_fraction_elapsed(r.now)
    forecast = spend / elapsed if spend is not None and elapsed > 0.05 else None
    for budget in config.budgets_usd:
        if spend is None:
            lines.append(f"  ${budget:,.0f}: unknown (no figures)")
            continue
        used = spend / budget * 100
        state = "OVER" if used >= 100 else "warning (80% reached)" if used >= 80 else "OK"
        fc = (
            f", on pace for ${forecast:,.2f} ({forecast / budget * 100:.0f}%)" if forecast is not None else ""
        )
        lines.append(f"  ${budget:,.0f}: {used:.0f}% used{fc}: {state}")
    if r.cap_usd is not None or r.cap_tripped:
        if r.cap_tripped:
            amount = f" ${r.cap_usd:,.2f}" if r.cap_usd is not None else ""
            lines += [
                f"  Hard cap{amount}: TRIPPED ({r.cap_reason}).",
                "    Starts are refused until you reset it: make reset-cap",
            ]
        else:
            est = r.own_estimate_usd
            share = (
                f"own estimate at {est / r.cap_usd * 100:.0f}%"
                if est is not None and r.cap_usd
                else "no estimate"
            )
            lines.append(f"  Hard cap ${r.cap_usd:,.2f}: not tripped ({share})")
    lines += [
        "",
        "Cost Explorer figures lag up to a day; the own estimate uses list prices and this project's "
        "start/stop records. Details: docs/cost.md in the repository.",
    ]
    subject = f"gpu-autostop weekly cost: {_usd(spend)} so far in {month_name}"
    lines = [_wrap(line) for line in lines]
    if r.explorer is None:
        subject += " (estimate)"
    return subject, "\n".join(lines)


def run(config: Config, now: datetime, *, send: bool = True) -> dict[str, Any]:
    from autostop import notify

    report = build(config, now)
    subject, body = render(config, report)
    sent = notify.publish(config.alert_topic_arn, subject, body) if send else False
    per_image = report.cost_per_image
    return {
        "ok": True,
        "sent": sent,
        "cost_explorer": "ok" if report.explorer else "unavailable",
        "cost_explorer_error": report.explorer_error,
        "month_to_date_usd": report.explorer.month_to_date_usd if report.explorer else None,
        "last_7_days_usd": report.explorer.last_7_days_usd if report.explorer else None,
        "credits_month_usd": report.explorer.credits_month_usd if report.explorer else None,
        "own_estimate_usd": report.own_estimate_usd,
        "running_hours_month": round(report.month_hours, 2),
        "starts_month": report.month_starts,
        "images_month": report.images_month,
        "cost_per_image_usd": None if per_image is None else round(per_image, 4),
        "cap_tripped": report.cap_tripped,
        "subject": subject,
        "message": body,
    }
