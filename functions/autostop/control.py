"""Start, status and stop of the GPU instance: the domain behind the three handlers.

Each function takes the frozen Config and a Clock, makes the AWS calls through the
small modules beside it, and returns the JSON answer of the Lambda contract.
RequestError means "nothing changed" and becomes an ``ok: false`` answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from autostop import ec2, records
from autostop.clock import Clock, iso
from autostop.config import Config
from autostop.errors import RequestError
from autostop.events import StartRequest, StopTrigger
from autostop.idle import StopPolicy, Verdict, agent_is_current, decide, idle_since

if TYPE_CHECKING:  # the cap and the ledger are imported when configured: lean cold starts
    from autostop.cap import CapCheck
    from autostop.ledger import Ledger

POLL_SECONDS = 5.0
#: How long start waits for a stopping instance to reach "stopped" before it gives up.
STOPPING_WAIT_LIMIT_S = 120.0
RETRY_AFTER_STOPPING_S = 30
RETRY_AFTER_NO_CAPACITY_S = 300
RETRY_AFTER_WAIT_S = 15
GONE_STATES = ("shutting-down", "terminated")


@dataclass
class Outcome:
    """What a call did, for the handler's log keys and metrics."""

    decision: str = ""
    reason: str = ""
    started: bool = False
    stopped: bool = False
    instance_type: str | None = None
    ready_wait_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def comfyui_url(config: Config, public_ip: str | None) -> str | None:
    return f"http://{public_ip}:{config.comfyui_port}" if public_ip else None


def _ready(config: Config, instance: ec2.Instance, now: datetime) -> bool:
    """Ready: running, and a current agent record (fresh, this boot) says ComfyUI answered."""
    if instance.state != "running":
        return False
    record = records.read_agent_record(config.agent_state_parameter, config.instance_id)
    return bool(
        record
        and record.comfyui_ready
        and record.is_current(now, config.stale_after_seconds, instance.launch_time)
    )


def _poll(clock: Clock, deadline: datetime, done: Callable[[], bool]) -> bool:
    """Call ``done`` every POLL_SECONDS until it is true or the deadline passes."""
    while True:
        if done():
            return True
        remaining = (deadline - clock.now()).total_seconds()
        if remaining <= 0:
            return False
        clock.sleep(min(POLL_SECONDS, remaining))


def _start_with_fallback(config: Config, instance: ec2.Instance, outcome: Outcome) -> None:
    """StartInstances; on a capacity error switch to the next type (while stopped) and retry."""
    candidates = [config.instance_type or instance.instance_type]
    for candidate in (instance.instance_type, *config.fallback_instance_types):
        if candidate and candidate not in candidates:
            candidates.append(candidate)
    current = instance.instance_type
    short: list[str] = []
    for candidate in candidates:
        try:
            if candidate != current:
                ec2.set_instance_type(config.instance_id, candidate)
                current = candidate
            ec2.start(config.instance_id)
        except ClientError as exc:
            code = ec2.error_code(exc)
            if code in ec2.CAPACITY_ERRORS:
                short.append(candidate)
                continue
            if code == "IncorrectInstanceState":
                # Another request started it between our describe and this call: harmless.
                outcome.instance_type = current
                outcome.reason = "started by a concurrent request"
                return
            raise
        outcome.started = True
        outcome.instance_type = candidate
        outcome.extra["capacity_short"] = short
        return
    declared = candidates[0]
    if current != declared:
        ec2.set_instance_type(config.instance_id, declared)
    raise RequestError(
        "NoCapacity",
        f"AWS has no capacity for {', '.join(short)} in this zone right now; "
        f"try again in {RETRY_AFTER_NO_CAPACITY_S // 60} minutes",
        instance_id=config.instance_id,
        state="stopped",
        tried_instance_types=short,
        retry_after_s=RETRY_AFTER_NO_CAPACITY_S,
    )


def _guard_cap(config: Config, now: datetime, instance: ec2.Instance) -> None:
    """Refuse (BudgetExceeded) while the hard cap is tripped; trip it when the estimate passed it."""
    from autostop import cap

    result = cap.check(config, now, instance)
    if not result.blocks:
        return
    state = result.state
    reason = state.reason
    if not state.tripped:
        reason = _over_cap_reason(result)
        cap.trip(config, now, source="estimate", reason=reason, instance=instance, previous=state, stop=False)
    raise RequestError(
        "BudgetExceeded",
        f"the hard spend cap is tripped ({reason or 'no reason recorded'}); starts are refused until the "
        f"owner resets it with `make reset-cap`",
        instance_id=config.instance_id,
        state=instance.state,
        cap_usd=result.cap_usd,
        estimate_usd=result.estimate.total if result.estimate else None,
        tripped_at=iso(state.tripped_at) if state.tripped else iso(now),
    )


def _over_cap_reason(result: CapCheck) -> str:
    spend = result.estimate.describe() if result.estimate else "unknown"
    return f"month-to-date estimate {spend} reached the hard cap of ${result.cap_usd or 0:.2f}"


def _ledger_safely(outcome: Outcome, action: Callable[[], None]) -> None:
    """Bookkeeping never fails a start or a stop: an SSM error is reported for the log instead."""
    try:
        action()
    except ClientError as exc:
        outcome.extra["ledger_error"] = f"{ec2.error_code(exc)}: {exc}"


def _session_price(config: Config, instance: ec2.Instance) -> float:
    from autostop.pricing import cautious_hourly_price

    market = "spot" if instance.lifecycle == "spot" else "on-demand"
    return cautious_hourly_price(instance.instance_type, config.region, config.hourly_price_usd, market)


def _ledger_start(config: Config, now: datetime, instance: ec2.Instance) -> None:
    from autostop import ledger

    assert config.ledger_parameter
    book = ledger.read(config.ledger_parameter, now)
    _close_unfinished(config, now, book, instance.launch_time)
    book.record_start(
        now, instance.launch_time or now, instance.instance_type, _session_price(config, instance)
    )
    ledger.write(config.ledger_parameter, book)


def _close_unfinished(config: Config, now: datetime, book: Ledger, current_launch: datetime | None) -> bool:
    """Close a session whose stop this project did not see, ending at that boot's last heartbeat."""
    opened = book.open_launch()
    if opened is None or opened == current_launch:
        return False
    record = records.read_agent_record(config.agent_state_parameter, config.instance_id)
    ended = (
        record.heartbeat_at if record and record.is_of_boot(opened) and record.heartbeat_at > opened else now
    )
    images = record.images_completed if record and record.is_of_boot(opened) else 0
    details = book.open or {}
    price = float(details.get("price") or 0.0)
    return book.record_stop(now, opened, str(details.get("instance_type")), price, images=images, end=ended)


def _ledger_stop(
    config: Config, now: datetime, instance: ec2.Instance, record: records.AgentRecord | None
) -> None:
    from autostop import ledger

    assert config.ledger_parameter
    if instance.launch_time is None:
        return
    book = ledger.read(config.ledger_parameter, now)
    images = record.images_completed if record and record.is_of_boot(instance.launch_time) else 0
    if book.record_stop(
        now, instance.launch_time, instance.instance_type, _session_price(config, instance), images
    ):
        ledger.write(config.ledger_parameter, book)


def _ledger_reconcile(config: Config, now: datetime) -> None:
    from autostop import ledger

    assert config.ledger_parameter
    book = ledger.read(config.ledger_parameter, now)
    if _close_unfinished(config, now, book, None):
        ledger.write(config.ledger_parameter, book)


def start(
    config: Config,
    clock: Clock,
    request: StartRequest,
    *,
    request_id: str | None = None,
    budget_s: float | None = None,
) -> tuple[dict[str, Any], Outcome]:
    """Start the instance if it is not running; optionally wait for running or ready."""
    began = clock.now()
    budget = request.timeout_s if budget_s is None else min(request.timeout_s, budget_s)
    outcome = Outcome()
    instance = ec2.describe(config.instance_id)
    if instance.state in GONE_STATES:
        raise RequestError(
            "InstanceGone",
            f"instance {config.instance_id} is {instance.state}; redeploy with `make deploy`",
            instance_id=config.instance_id,
            state=instance.state,
        )
    if config.cap_parameter:
        _guard_cap(config, began, instance)
    records.write_lease(config.lease_parameter, began, request_id)

    if instance.state == "stopping":
        limit = STOPPING_WAIT_LIMIT_S if budget_s is None else min(STOPPING_WAIT_LIMIT_S, budget_s)
        deadline = clock.now() + timedelta(seconds=limit)
        box = [instance]

        def stopped() -> bool:
            box[0] = ec2.describe(config.instance_id)
            return box[0].state != "stopping"

        if not _poll(clock, deadline, stopped):
            raise RequestError(
                "InstanceStopping",
                f"instance is still stopping after {limit:.0f} s; "
                f"call start again in {RETRY_AFTER_STOPPING_S} s",
                instance_id=config.instance_id,
                state="stopping",
                retry_after_s=RETRY_AFTER_STOPPING_S,
            )
        instance = box[0]

    if instance.state == "stopped":
        _start_with_fallback(config, instance, outcome)
        instance = ec2.describe(config.instance_id)
        if outcome.started and config.ledger_parameter:
            _ledger_safely(outcome, lambda: _ledger_start(config, clock.now(), instance))
    outcome.instance_type = outcome.instance_type or instance.instance_type
    outcome.decision = "started" if outcome.started else "already_" + instance.state
    outcome.reason = outcome.reason or (
        f"started as {outcome.instance_type}" if outcome.started else f"instance already {instance.state}"
    )

    ready = _ready(config, instance, clock.now())
    timed_out = False
    if request.wait != "none" and not (ready or (request.wait == "running" and instance.state == "running")):
        deadline = began + timedelta(seconds=budget)
        box = [instance]

        def reached() -> bool:
            box[0] = ec2.describe(config.instance_id)
            if box[0].state in GONE_STATES:
                raise RequestError("InstanceGone", f"instance became {box[0].state} while starting")
            if request.wait == "running":
                return box[0].state == "running"
            return _ready(config, box[0], clock.now())

        timed_out = not _poll(clock, deadline, reached)
        instance = box[0]
        ready = _ready(config, instance, clock.now())
        if ready and request.wait == "ready":
            outcome.ready_wait_s = (clock.now() - began).total_seconds()

    answer = {
        "ok": True,
        "instance_id": config.instance_id,
        "state": instance.state,
        "ready": ready,
        "started": outcome.started,
        "instance_type": outcome.instance_type,
        "public_ip": instance.public_ip,
        "comfyui_url": comfyui_url(config, instance.public_ip),
        "waited_s": round((clock.now() - began).total_seconds(), 1),
        "timed_out": timed_out,
        "retry_after_s": RETRY_AFTER_WAIT_S
        if (timed_out or (request.wait == "none" and not ready))
        else None,
    }
    return answer, outcome


def status(config: Config, clock: Clock) -> dict[str, Any]:
    now = clock.now()
    instance = ec2.describe(config.instance_id)
    record = records.read_agent_record(config.agent_state_parameter, config.instance_id)
    lease = records.read_lease(config.lease_parameter)
    policy = StopPolicy.from_config(config)
    current = agent_is_current(record, now, policy, instance.launch_time)
    usable = record if current else None
    on = instance.state in ("pending", "running")
    since = idle_since(usable, lease, instance.launch_time) if instance.state == "running" else None
    if record is None:
        agent = "missing"
    elif not record.is_of_boot(instance.launch_time):
        agent = "earlier_boot"
    else:
        agent = "current" if current else "stale"
    return {
        "ok": True,
        "instance_id": config.instance_id,
        "state": instance.state,
        "ready": bool(instance.state == "running" and usable and usable.comfyui_ready),
        "ready_at": iso(usable.ready_at) if usable and usable.comfyui_ready else None,
        "public_ip": instance.public_ip,
        "comfyui_url": comfyui_url(config, instance.public_ip),
        "queue_depth": usable.queue_depth if usable and instance.state == "running" else None,
        "idle_minutes": round(max((now - since).total_seconds(), 0) / 60, 2) if since else None,
        "running_since": iso(instance.launch_time) if on else None,
        "instance_type": instance.instance_type,
        "agent": agent,
    }


def session_cost(config: Config, instance: ec2.Instance, now: datetime) -> tuple[float, float | None]:
    """Hours since launch and their estimated cost (None when the price is unknown)."""
    from autostop.pricing import hourly_price  # only on a stop: keeps status/start imports lean

    hours = (now - instance.launch_time).total_seconds() / 3600 if instance.launch_time else 0.0
    price = hourly_price(instance.instance_type, config.region, config.hourly_price_usd)
    return hours, None if price is None else round(hours * price, 2)


def _stop_message(
    config: Config,
    instance: ec2.Instance,
    now: datetime,
    trigger: StopTrigger,
    verdict: Verdict | None,
) -> tuple[str, str]:
    hours, cost = session_cost(config, instance, now)
    cost_text = "unknown (no price for this type and region)" if cost is None else f"${cost:.2f}"
    trig = trigger.kind + (f" {trigger.alarm_name}" if trigger.alarm_name else "")
    if verdict is None:
        subject = f"gpu-autostop: {instance.instance_id} emergency stop"
        why = f"forced stop ({trigger.reason or 'no reason given'})"
    else:
        subject = (
            f"gpu-autostop: {instance.instance_id} stopped after {verdict.idle_minutes or 0:.0f} idle minutes"
        )
        why = verdict.reason
    lines = [
        f"gpu-autostop stopped instance {instance.instance_id} ({instance.instance_type}).",
        "",
        f"Why: {why}",
        f"Trigger: {trig}",
        f"Running since: {iso(instance.launch_time)} ({hours:.2f} hours)",
        f"Estimated session cost: {cost_text}",
    ]
    if verdict is not None and verdict.agent_silent:
        lines += [
            "",
            "Note: the on-instance agent is silent (no current state record), so this decision used "
            "CloudWatch EC2 metrics. After the next start, check the agent: "
            "`journalctl -u gpu-autostop-agent` on the instance.",
        ]
    lines += ["", "Nothing to do: the next start request starts it again."]
    return subject, "\n".join(lines)


def stop(config: Config, clock: Clock, trigger: StopTrigger) -> tuple[dict[str, Any], Outcome]:
    """Stop the instance when the stop rule says so (or when forced)."""
    now = clock.now()
    outcome = Outcome()
    instance = ec2.describe(config.instance_id)
    verdict: Verdict | None = None
    record: records.AgentRecord | None = None
    if config.ledger_parameter and instance.state in ("stopping", "stopped"):
        _ledger_safely(outcome, lambda: _ledger_reconcile(config, now))
    if config.cap_parameter and not trigger.force and instance.state in ("pending", "running"):
        capped = _stop_for_cap(config, now, instance, outcome)
        if capped is not None:
            return capped, outcome
    if trigger.force:
        if instance.state not in ("pending", "running"):
            outcome.decision, outcome.reason = (
                "not_running",
                f"instance is {instance.state}, nothing to stop",
            )
            return _stop_answer(config, outcome, None), outcome
        outcome.decision, outcome.reason = (
            "forced",
            f"forced stop: {trigger.reason or 'no reason given'}",
        )
    else:
        record = records.read_agent_record(config.agent_state_parameter, config.instance_id)
        lease = records.read_lease(config.lease_parameter)
        policy = StopPolicy.from_config(config)
        facts: dict[str, Any] = {
            "now": now,
            "state": instance.state,
            "launch_time": instance.launch_time,
            "lease_at": lease,
            "record": record,
            "policy": policy,
        }
        verdict = decide(**facts)
        if verdict.code == "no_metrics":
            from autostop.metrics_source import read_ec2_metrics  # only when the agent is silent

            metrics = read_ec2_metrics(config.instance_id, now, policy.metric_window_minutes)
            verdict = decide(**facts, metrics=metrics)
        outcome.decision, outcome.reason = verdict.code, verdict.reason
        outcome.extra["agent_silent"] = verdict.agent_silent
        if not verdict.stop:
            return _stop_answer(config, outcome, verdict), outcome
        # A start request may have arrived while we decided: it wins.
        if records.read_lease(config.lease_parameter) != lease:
            outcome.decision, outcome.reason = (
                "lease_renewed",
                "a start request arrived while deciding",
            )
            return _stop_answer(config, outcome, verdict), outcome
    try:
        ec2.stop(config.instance_id)
    except ClientError as exc:
        if ec2.error_code(exc) != "IncorrectInstanceState":
            raise
        outcome.decision, outcome.reason = "state_changed", "instance changed state before the stop"
        return _stop_answer(config, outcome, verdict), outcome
    outcome.stopped = True
    subject, message = _stop_message(config, instance, now, trigger, verdict)
    hours, cost = session_cost(config, instance, now)
    outcome.extra.update(session_hours=round(hours, 3), session_cost_usd=cost)
    if config.ledger_parameter:
        if record is None:
            record = records.read_agent_record(config.agent_state_parameter, config.instance_id)
        _ledger_safely(outcome, lambda: _ledger_stop(config, now, instance, record))
    from autostop import notify

    notify.publish(config.alert_topic_arn, subject, message)
    return _stop_answer(config, outcome, verdict), outcome


def _stop_for_cap(
    config: Config, now: datetime, instance: ec2.Instance, outcome: Outcome
) -> dict[str, Any] | None:
    """The hard cap, checked on every re-check before the idle rule: over it, stop (forced)."""
    from autostop import cap

    result = cap.check(config, now, instance)
    if not result.blocks:
        return None
    reason = result.state.reason if result.state.tripped else _over_cap_reason(result)
    source = result.state.source if result.state.tripped else "estimate"
    outcome.stopped = cap.trip(
        config, now, source=source, reason=reason, instance=instance, previous=result.state
    )
    outcome.decision, outcome.reason = "hard_cap", f"hard cap: {reason}"
    if outcome.stopped:
        hours, cost = session_cost(config, instance, now)
        outcome.extra.update(session_hours=round(hours, 3), session_cost_usd=cost)
        if config.ledger_parameter:
            record = records.read_agent_record(config.agent_state_parameter, config.instance_id)
            _ledger_safely(outcome, lambda: _ledger_stop(config, now, instance, record))
    return _stop_answer(config, outcome, None)


def _stop_answer(config: Config, outcome: Outcome, verdict: Verdict | None) -> dict[str, Any]:
    idle = verdict.idle_minutes if verdict else None
    return {
        "ok": True,
        "instance_id": config.instance_id,
        "stopped": outcome.stopped,
        "decision": outcome.decision,
        "reason": outcome.reason,
        "idle_minutes": None if idle is None else round(idle, 2),
        "agent_silent": bool(verdict and verdict.agent_silent),
        **{k: v for k, v in outcome.extra.items() if k.startswith("session_")},
    }
