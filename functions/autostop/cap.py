"""The hard spend cap: a "tripped" flag in SSM, the month-to-date estimate, trip and reset.

Two paths trip it, whichever comes first:

* the project's own real-time estimate (closed sessions from the usage ledger, the
  running session, fixed monthly costs pro rata) reaching ``HARD_CAP_USD``, checked on
  every start and on every stop re-check (``check``);
* an AWS Budgets notification (Budgets -> SNS -> ``autostop.handlers.budget``).

Tripping stops the instance (forced: a running job is lost, that is the point of a cap),
sets the flag and emails the alerts topic. While the flag is set, start answers
``BudgetExceeded`` and changes nothing. The owner resets it::

    make reset-cap                                   # or:
    gpu-autostop cap reset --parameter /gpu-autostop/cap [--extra-usd 20]

``--extra-usd`` raises the cap for the rest of the month (otherwise the next start
trips it again while the estimate is still over the cap). The idle stop rule stays in
``autostop.idle``; this is a separate check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from autostop_contract import Code, iso, parse_time
from botocore.exceptions import ClientError

from autostop import aws, records
from autostop.ledger import Ledger, month_fraction_elapsed, month_of, month_start

if TYPE_CHECKING:
    from autostop.config import Config
    from autostop.cost_events import BudgetNotice
    from autostop.ec2 import Instance

CAP_PARAMETER_ENV = "CAP_PARAMETER"


@dataclass(frozen=True)
class CapState:
    tripped: bool = False
    tripped_at: datetime | None = None
    source: str = ""  # "estimate", "budget"
    reason: str = ""
    #: Month of the owner's extra allowance (and of the last reset).
    month: str | None = None
    extra_usd: float = 0.0
    reset_at: datetime | None = None

    def extra_for(self, now: datetime) -> float:
        return self.extra_usd if self.month == month_of(now) else 0.0

    def dumps(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "tripped": self.tripped,
                "tripped_at": iso(self.tripped_at),
                "source": self.source,
                "reason": self.reason,
                "month": self.month,
                "extra_usd": self.extra_usd,
                "reset_at": iso(self.reset_at),
            },
            sort_keys=True,
        )

    @classmethod
    def parse(cls, text: str | None) -> CapState:
        """A missing document is "not tripped"; an unreadable one counts as tripped (fail safe)."""
        if not text:
            return cls()
        data = records.json_object(text)
        if data is None:
            return cls(True, None, "unknown", "the cap flag is unreadable; reset it with `make reset-cap`")
        extra = data.get("extra_usd")
        return cls(
            tripped=data.get("tripped") is True,
            tripped_at=parse_time(data.get("tripped_at")),
            source=str(data.get("source") or ""),
            reason=str(data.get("reason") or ""),
            month=data.get("month") if isinstance(data.get("month"), str) else None,
            extra_usd=float(extra) if isinstance(extra, int | float) and not isinstance(extra, bool) else 0.0,
            reset_at=parse_time(data.get("reset_at")),
        )


@dataclass(frozen=True)
class SpendEstimate:
    """The project's own month-to-date estimate, in USD."""

    closed_usd: float
    running_usd: float
    fixed_usd: float
    hours: float

    @property
    def total(self) -> float:
        return round(self.closed_usd + self.running_usd + self.fixed_usd, 2)

    def describe(self) -> str:
        return (
            f"${self.total:.2f} month to date (instance time {self.hours:.1f} h: "
            f"${self.closed_usd + self.running_usd:.2f}; fixed costs so far: ${self.fixed_usd:.2f})"
        )


@dataclass(frozen=True)
class CapCheck:
    state: CapState
    estimate: SpendEstimate | None
    cap_usd: float | None

    @property
    def over(self) -> bool:
        return self.estimate is not None and self.cap_usd is not None and self.estimate.total >= self.cap_usd

    @property
    def blocks(self) -> bool:
        return self.state.tripped or self.over


# --- reading and writing the flag -----------------------------------------------------------------


def _get(names: list[str]) -> dict[str, str]:
    """Several parameters in one call; absent ones are left out."""
    response = aws.client("ssm").get_parameters(Names=names)
    return {p["Name"]: p["Value"] for p in response.get("Parameters", [])}


def read_state(parameter: str) -> CapState:
    return CapState.parse(_get([parameter]).get(parameter))


def write_state(parameter: str, state: CapState) -> None:
    aws.client("ssm").put_parameter(Name=parameter, Value=state.dumps(), Type="String", Overwrite=True)


# --- the estimate ---------------------------------------------------------------------------------


def price_per_hour(config: Config, instance_type: str) -> float:
    """The on-demand instance price (cautious for spot) plus what each running hour adds."""
    from autostop import cost, pricing

    price = pricing.cautious_hourly_price(instance_type, config.region, config.hourly_price_usd)
    return price + cost.running_extras_per_hour(pricing.default_book(), config.region)


def fixed_monthly(config: Config) -> float:
    if config.fixed_monthly_usd is not None:
        return config.fixed_monthly_usd
    from autostop import cost, pricing

    return cost.fixed_monthly_usd(pricing.default_book(), config.region)


def estimate(config: Config, now: datetime, ledger: Ledger, instance: Instance | None) -> SpendEstimate:
    """Closed sessions this month + the running session + fixed costs pro rata, at ``now``."""
    ledger.roll(now)
    from autostop import cost, pricing

    extras = cost.running_extras_per_hour(pricing.default_book(), config.region)
    closed = ledger.current.cost_usd + ledger.current.hours * extras
    hours = ledger.current.hours
    running = 0.0
    live = instance is not None and instance.state in ("pending", "running") and instance.launch_time
    if live and instance and instance.launch_time and ledger.last_closed_launch != iso(instance.launch_time):
        since = max(instance.launch_time, month_start(now))
        open_hours = max((now - since).total_seconds(), 0.0) / 3600
        running = open_hours * price_per_hour(config, instance.instance_type)
        hours += open_hours
    fixed = fixed_monthly(config) * month_fraction_elapsed(now)
    return SpendEstimate(round(closed, 4), round(running, 4), round(fixed, 4), hours)


def check(config: Config, now: datetime, instance: Instance | None) -> CapCheck:
    """Read the flag (and, with HARD_CAP_USD, the ledger) in one call and compare."""
    if not config.cap_parameter:
        return CapCheck(CapState(), None, None)
    names = [config.cap_parameter]
    if config.hard_cap_usd is not None and config.ledger_parameter:
        names.append(config.ledger_parameter)
    values = _get(names)
    state = CapState.parse(values.get(config.cap_parameter))
    if config.hard_cap_usd is None:
        return CapCheck(state, None, None)
    ledger = Ledger.parse(values.get(config.ledger_parameter or ""), now)
    spend = estimate(config, now, ledger, instance)
    return CapCheck(state, spend, config.hard_cap_usd + state.extra_for(now))


# --- tripping and resetting -----------------------------------------------------------------------


def trip(
    config: Config,
    now: datetime,
    *,
    source: str,
    reason: str,
    instance: Instance | None = None,
    previous: CapState | None = None,
    stop: bool = True,
) -> bool:
    """Set the flag, stop the instance (forced) and email. True when this call stopped it.

    ``stop=False`` (the start function, which has no StopInstances permission): the flag is
    set and the stop function's next re-check stops a running instance within minutes.
    """
    from autostop import ec2, notify

    if not config.cap_parameter:
        raise RuntimeError("CAP_PARAMETER is not set")
    previous = previous or read_state(config.cap_parameter)
    newly = not previous.tripped
    if newly:
        write_state(
            config.cap_parameter,
            CapState(True, now, source, reason, previous.month, previous.extra_usd, previous.reset_at),
        )
    instance = instance or ec2.describe(config.instance_id)
    stopped = False
    if stop and instance.state in ("pending", "running"):
        try:
            ec2.stop(config.instance_id)
            stopped = True
        except ClientError as exc:
            if ec2.error_code(exc) != "IncorrectInstanceState":
                raise
    if newly or stopped:
        if stopped:
            what = f"stopped instance {config.instance_id}"
        elif instance.state in ("pending", "running"):
            what = f"instance {config.instance_id} is stopped at the next re-check"
        else:
            what = f"instance {config.instance_id} is {instance.state}"
        notify.publish(
            config.alert_topic_arn,
            f"gpu-autostop: hard cap reached, {what}",
            "\n".join(
                [
                    f"gpu-autostop's hard spend cap tripped and {what}.",
                    "",
                    f"Why: {reason}",
                    f"Trigger: {source}",
                    f"Tripped at: {iso(now)}",
                    "",
                    "Until you reset the cap, every start request is refused with BudgetExceeded",
                    "(nothing is started, nothing changes).",
                    "",
                    "To reset (after raising hard_cap_usd, or to allow more spend this month):",
                    "  make reset-cap                      # or",
                    f"  gpu-autostop cap reset --parameter {config.cap_parameter} [--extra-usd 20]",
                ]
            ),
        )
    return stopped


def over_cap_reason(result: CapCheck) -> str:
    spend = result.estimate.describe() if result.estimate else "unknown"
    return f"month-to-date estimate {spend} reached the hard cap of ${result.cap_usd or 0:.2f}"


#: What to do about BudgetExceeded: the one wording of the advice (the client's hint, the n8n
#: workflows' "Explain failure" hint and examples/n8n/README.md; tests assert they are equal).
#: A tripped cap stays tripped across months, so waiting does not help.
BUDGET_EXCEEDED_ADVICE = (
    "the hard spend cap is tripped and refuses every start, this month and after, until the owner "
    "resets it with `make reset-cap` (`make reset-cap EXTRA_USD=20` allows $20 more this month)"
)


def guard_start(config: Config, now: datetime, instance: Instance) -> None:
    """Start: refuse (BudgetExceeded, nothing changed) while tripped; trip when the estimate passed it."""
    from autostop.errors import RequestError

    result = check(config, now, instance)
    if not result.blocks:
        return
    state = result.state
    reason = state.reason
    if not state.tripped:
        reason = over_cap_reason(result)
        trip(config, now, source="estimate", reason=reason, instance=instance, previous=state, stop=False)
    raise RequestError(
        Code.BUDGET_EXCEEDED,
        f"the hard spend cap is tripped ({reason or 'no reason recorded'}); starts are refused until the "
        f"owner resets it with `make reset-cap`",
        instance_id=config.instance_id,
        state=instance.state,
        cap_usd=result.cap_usd,
        estimate_usd=result.estimate.total if result.estimate else None,
        tripped_at=iso(state.tripped_at) if state.tripped else iso(now),
    )


def enforce(config: Config, now: datetime, instance: Instance) -> tuple[bool, str] | None:
    """A stop re-check: over the cap (or tripped), stop (forced). (stopped, reason), or None to go on."""
    result = check(config, now, instance)
    if not result.blocks:
        return None
    reason = result.state.reason if result.state.tripped else over_cap_reason(result)
    source = result.state.source if result.state.tripped else "estimate"
    return trip(config, now, source=source, reason=reason, instance=instance, previous=result.state), reason


def on_budget(config: Config, now: datetime, notices: list[BudgetNotice]) -> dict[str, Any]:
    """AWS Budgets said the cap's budget was passed: trip (stop, flag, email) unless it is only a forecast.

    A FORECASTED notification never trips. An ACTUAL one trips, except when it names an
    amount below HARD_CAP_USD (a budget notification routed to the cap topic by mistake).
    """
    if not config.cap_parameter:
        raise RuntimeError("CAP_PARAMETER is not set")
    decisions = []
    tripping: BudgetNotice | None = None
    for notice in notices:
        label = f"budget {notice.budget_name or '?'} ({notice.kind.lower()}"
        label += f", ${notice.amount_usd:.2f})" if notice.amount_usd is not None else ")"
        if notice.kind == "FORECASTED":
            decisions.append(f"{label}: a forecast, not tripping")
        elif (
            config.hard_cap_usd is not None
            and notice.amount_usd is not None
            and notice.amount_usd < config.hard_cap_usd
        ):
            decisions.append(f"{label}: below the hard cap ${config.hard_cap_usd:.2f}, not tripping")
        else:
            decisions.append(f"{label}: tripping the hard cap")
            tripping = tripping or notice
    stopped = False
    previous = read_state(config.cap_parameter)
    if tripping is not None:
        amount = f" reached ${tripping.amount_usd:.2f}" if tripping.amount_usd is not None else " was passed"
        reason = f"AWS Budgets: the actual cost of budget {tripping.budget_name or '?'}{amount}"
        stopped = trip(config, now, source="budget", reason=reason, previous=previous)
    return {
        "ok": True,
        "instance_id": config.instance_id,
        "tripped": tripping is not None or previous.tripped,
        "newly_tripped": tripping is not None and not previous.tripped,
        "stopped": stopped,
        "decisions": decisions,
    }


def reset(parameter: str, now: datetime, extra_usd: float = 0.0) -> CapState:
    """Clear the flag; ``extra_usd`` raises the cap until the end of this month."""
    state = CapState(False, None, "", "", month_of(now), max(extra_usd, 0.0), now)
    write_state(parameter, state)
    return state
