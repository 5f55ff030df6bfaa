"""The cost model: what a month of gpu-autostop costs (the calculator's command line is
``gpu-autostop-tools cost``, in tools/; the hard cap uses this at run time).

The bill is split into compute (instance hours), storage (the gp3 root volume, billed
while stopped too), public IP (IPv4 while running, or all month with an Elastic IP),
monitoring (CloudWatch alarms, custom metrics, dashboard) and control plane (KMS key,
Lambda, logs, Cost Explorer requests). A month is 730 hours, as AWS counts it.

The same model gives the hard cap its fixed monthly costs (``fixed_monthly_usd``) and
the simulator its dollars. Everything here is an estimate; the Cost Explorer figures in
the weekly report are the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from autostop.pricing import (
    Price,
    PriceBook,
)

HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
CATEGORIES = ("compute", "storage", "public_ip", "monitoring", "control_plane")
#: EC2 detailed monitoring bills the instance's metrics like custom metrics (7 per instance).
DETAILED_MONITORING_METRICS = 7
TABLE_HOURS = (24.0, 8.0, 4.0, 2.0)
PUBLIC_IP_MODES = ("auto", "eip", "none")


@dataclass(frozen=True)
class Assumptions:
    """What the stack deploys (Terraform defaults); every number can be changed."""

    volume_gb: float = 100.0
    #: "auto": a public IPv4 while running (Terraform default); "eip": an Elastic IP all month.
    public_ip: str = "auto"
    detailed_monitoring: bool = False
    #: 4 idle alarms (CPU, NetworkOut, QueueDepth, GPU), the DLQ depth, Errors of 5 functions.
    metric_alarms: int = 10
    composite_alarms: int = 1
    #: QueueDepth, GPUUtilization, ActiveSessions from the agent, sent while the instance runs.
    agent_metrics: int = 3
    #: Starts, Stops, StopsDeclined, StartToReadySeconds from the functions, sent around running time.
    function_metrics: int = 4
    dashboards: int = 1
    kms_keys: int = 1
    #: The stop function's EventBridge re-check.
    recheck_minutes: float = 5.0
    function_memory_mb: float = 256.0
    #: Average billed duration of one invocation.
    function_seconds: float = 0.5
    #: start/status calls from n8n per running hour (a start per prompt, status polls while booting).
    calls_per_running_hour: float = 30.0
    #: The weekly report asks Cost Explorer three times a week (month and week without credits, the credits).
    cost_explorer_requests: float = 3 * 52 / 12
    log_gb: float = 0.05
    #: Apply the always-free allowances (10 metrics, 10 alarms, 3 dashboards, Lambda's 1M requests
    #: and 400,000 GB-s) as if nothing else in the account used them.
    free_tier: bool = False


@dataclass(frozen=True)
class Line:
    category: str
    usd: float
    detail: str


@dataclass(frozen=True)
class Estimate:
    instance_type: str
    region: str
    market: str
    running_hours: float
    hourly: Price
    lines: tuple[Line, ...]

    def category(self, name: str) -> float:
        return sum(line.usd for line in self.lines if line.category == name)

    @property
    def items(self) -> dict[str, float]:
        return {name: round(self.category(name), 2) for name in CATEGORIES}

    @property
    def total(self) -> float:
        return round(sum(self.items.values()), 2)

    def as_json(self) -> dict[str, object]:
        return {"total_usd": self.total, "items": self.items}


def _free(count: float, allowance: float, assumptions: Assumptions) -> float:
    return max(count - allowance, 0.0) if assumptions.free_tier else count


def overhead_lines(
    book: PriceBook, region: str, running_hours: float, assumptions: Assumptions
) -> list[Line]:
    """Everything but compute, for ``running_hours`` of instance time in a 730-hour month."""
    a = assumptions
    share = min(max(running_hours / HOURS_PER_MONTH, 0.0), 1.0)
    lines: list[Line] = []

    gp3 = book.service("ebs_gp3_gb_month", region)
    lines.append(
        Line(
            "storage",
            a.volume_gb * gp3.usd,
            f"{a.volume_gb:g} GB gp3 x ${gp3.usd:g}/GB-month, stopped or not",
        )
    )

    ipv4 = book.service("public_ipv4_hour", region)
    if a.public_ip == "eip":
        lines.append(
            Line("public_ip", HOURS_PER_MONTH * ipv4.usd, f"Elastic IP all month: 730 h x ${ipv4.usd:g}/h")
        )
    elif a.public_ip == "auto":
        lines.append(
            Line(
                "public_ip",
                running_hours * ipv4.usd,
                f"public IPv4 while running: {running_hours:.1f} h x ${ipv4.usd:g}/h",
            )
        )
    else:
        lines.append(Line("public_ip", 0.0, "no public IPv4"))

    metric = book.service("cloudwatch_metric_month", region).usd
    alarm = book.service("cloudwatch_alarm_month", region).usd
    composite = book.service("cloudwatch_composite_alarm_month", region).usd
    dashboard = book.service("cloudwatch_dashboard_month", region).usd
    metric_months = (a.agent_metrics + a.function_metrics) * share
    if a.detailed_monitoring:
        metric_months += DETAILED_MONITORING_METRICS * share
    alarms = _free(a.metric_alarms, 10, a)
    lines += [
        Line("monitoring", alarms * alarm, f"{alarms:g} metric alarms x ${alarm:g}"),
        Line(
            "monitoring", a.composite_alarms * composite, f"{a.composite_alarms} composite x ${composite:g}"
        ),
        Line(
            "monitoring",
            _free(metric_months, 10, a) * metric,
            f"{metric_months:.2f} metric-months (custom metrics"
            f"{' and detailed monitoring' if a.detailed_monitoring else ''}, sent while running)"
            f" x ${metric:g}",
        ),
        Line(
            "monitoring", _free(a.dashboards, 3, a) * dashboard, f"{a.dashboards} dashboard x ${dashboard:g}"
        ),
    ]

    kms = book.service("kms_key_month", region).usd
    request = book.service("lambda_request", region).usd
    gb_second = book.service("lambda_gb_second", region).usd
    logs = book.service("cloudwatch_logs_ingest_gb", region).usd
    ce = book.service("cost_explorer_request", region).usd
    calls = HOURS_PER_MONTH * 60 / a.recheck_minutes + running_hours * a.calls_per_running_hour + 5
    gb_seconds = calls * a.function_seconds * a.function_memory_mb / 1024
    lines += [
        Line("control_plane", a.kms_keys * kms, f"{a.kms_keys} KMS key x ${kms:g}"),
        Line(
            "control_plane",
            _free(calls, 1_000_000, a) * request + _free(gb_seconds, 400_000, a) * gb_second,
            f"Lambda: {calls:,.0f} invocations, {gb_seconds:,.0f} GB-s",
        ),
        Line("control_plane", a.log_gb * logs, f"{a.log_gb:g} GB of logs x ${logs:g}"),
        Line(
            "control_plane",
            a.cost_explorer_requests * ce,
            f"{a.cost_explorer_requests:.1f} Cost Explorer requests",
        ),
        Line(
            "control_plane",
            0.0,
            "SSM parameters, SNS email, EventBridge, 2 budgets: no charge at this volume",
        ),
    ]
    return lines


def monthly_bill(
    book: PriceBook,
    instance_type: str,
    region: str,
    hours_per_day: float,
    *,
    days: float = DAYS_PER_MONTH,
    market: str = "on-demand",
    assumptions: Assumptions | None = None,
) -> Estimate:
    """The month's bill for ``hours_per_day`` of running time on ``days`` days (raises PriceUnknown)."""
    assumptions = assumptions or Assumptions()
    if not 0 <= hours_per_day <= 24:
        raise ValueError(f"hours per day must be between 0 and 24; got {hours_per_day:g}")
    if not 0 < days <= 31:
        raise ValueError(f"days must be more than 0 and at most 31; got {days:g}")
    if assumptions.public_ip not in PUBLIC_IP_MODES:
        raise ValueError(f"public IP must be one of {', '.join(PUBLIC_IP_MODES)}")
    hourly = book.instance(instance_type, region, market)
    running = min(hours_per_day * days, HOURS_PER_MONTH)
    compute = Line(
        "compute",
        running * hourly.usd,
        f"{running:.1f} h x ${hourly.usd:g}/h {market}",
    )
    return Estimate(
        instance_type,
        region,
        market,
        running,
        hourly,
        (compute, *overhead_lines(book, region, running, assumptions)),
    )


def fixed_monthly_usd(book: PriceBook, region: str, assumptions: Assumptions | None = None) -> float:
    """The month's costs that do not depend on running time (storage, alarms, KMS, re-checks, ...)."""
    return sum(line.usd for line in overhead_lines(book, region, 0.0, assumptions or Assumptions()))


def stopped_month_usd(
    book: PriceBook, region: str, assumptions: Assumptions | None = None
) -> tuple[float, float]:
    """A month with 0 running hours: (before the free tier, after the always-free allowances).

    The allowances, from https://aws.amazon.com/cloudwatch/pricing/ ("Free tier", read 2026-12-01):
    "10 Alarm metrics (only applicable to Standard resolution alarms that list metrics directly ...)"
    and "3 Dashboards for up to 50 metrics per month"; the composite alarm is not an alarm metric and
    stays billed. Lambda's 1M free requests cover the re-checks too. They are per account: another
    stack's alarms or dashboards use them up first.
    """
    a = assumptions or Assumptions()
    before = sum(line.usd for line in overhead_lines(book, region, 0.0, replace(a, free_tier=False)))
    after = sum(line.usd for line in overhead_lines(book, region, 0.0, replace(a, free_tier=True)))
    return round(before, 2), round(after, 2)


def running_extras_per_hour(book: PriceBook, region: str, assumptions: Assumptions | None = None) -> float:
    """Costs besides the instance price that grow with each running hour (public IP, metrics, calls)."""
    a = assumptions or Assumptions()
    full = sum(line.usd for line in overhead_lines(book, region, HOURS_PER_MONTH, a))
    return (full - fixed_monthly_usd(book, region, a)) / HOURS_PER_MONTH
