"""Start, status and stop of the GPU instance: the domain behind the three handlers.

Each function takes the frozen Config and a Clock, makes the AWS calls through the
small modules beside it, and returns the JSON answer of the Lambda contract.
RequestError means "nothing changed" and becomes an ``ok: false`` answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from autostop_contract import AgentRecord, Code, iso
from botocore.exceptions import ClientError

from autostop import ec2, records
from autostop.clock import Clock
from autostop.config import Config
from autostop.errors import RequestError
from autostop.events import StartRequest, StopTrigger
from autostop.idle import SILENT_ALERT_MINUTES, StopPolicy, Verdict, agent_is_current, decide, idle_since

POLL_SECONDS = 5.0
#: How long start waits for a stopping instance to reach "stopped" before it gives up.
STOPPING_WAIT_LIMIT_S = 120.0
RETRY_AFTER_STOPPING_S = 30
RETRY_AFTER_NO_CAPACITY_S = 300
#: After SpotInterrupted: EC2 restarts an interrupted Spot Instance itself when capacity returns.
RETRY_AFTER_SPOT_S = 300
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


def is_ready(instance: ec2.Instance, record: AgentRecord | None, now: datetime, config: Config) -> bool:
    """Ready: running, and a current agent record (fresh, this boot) says ComfyUI answered."""
    return bool(
        instance.state == "running"
        and record
        and record.comfyui_ready
        and record.is_current(now, config.stale_after_seconds, instance.launch_time)
    )


def _ready(config: Config, instance: ec2.Instance, now: datetime) -> bool:
    """is_ready, reading the agent record only when the instance is running."""
    if instance.state != "running":
        return False
    return is_ready(
        instance,
        records.read_agent_record(config.agent_state_parameter, config.instance_id, now),
        now,
        config,
    )


def _wait_for(
    config: Config, clock: Clock, deadline: datetime, done: Callable[[ec2.Instance], bool]
) -> tuple[ec2.Instance, bool]:
    """Describe the instance every POLL_SECONDS until ``done`` holds or the deadline passes."""
    while True:
        instance = ec2.describe(config.instance_id)
        if done(instance):
            return instance, True
        remaining = (deadline - clock.now()).total_seconds()
        if remaining <= 0:
            return instance, False
        clock.sleep(min(POLL_SECONDS, remaining))


def _gone(config: Config, state: str) -> RequestError:
    return RequestError(
        Code.INSTANCE_GONE,
        f"instance {config.instance_id} is {state}; redeploy with `make deploy`",
        instance_id=config.instance_id,
        state=state,
    )


def _start_with_fallback(config: Config, instance: ec2.Instance, outcome: Outcome) -> None:
    """StartInstances; on a capacity error switch to the next type (while stopped) and retry.

    A Spot Instance is never resized: "While a Spot Instance is stopped, you can modify some of its
    instance attributes, but not the instance type" (EC2 user guide, "Behavior of Spot Instance
    interruptions", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/interruption-behavior.html).
    It starts as it is, and a capacity error is a NoCapacity answer straight away.
    """
    if instance.is_spot:
        candidates = [instance.instance_type]
        declared = instance.instance_type
    else:
        candidates = [config.instance_type or instance.instance_type]
        for candidate in (instance.instance_type, *config.fallback_instance_types):
            if candidate and candidate not in candidates:
                candidates.append(candidate)
        declared = candidates[0]
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
            if code == ec2.SPOT_START_REFUSED:
                raise RequestError(
                    Code.SPOT_INTERRUPTED,
                    "AWS refuses to start this Spot Instance now: it was interrupted and only EC2 "
                    "restarts it once Spot capacity returns (or its Spot request is still settling "
                    f"after a stop); try again in {RETRY_AFTER_SPOT_S // 60} minutes",
                    instance_id=config.instance_id,
                    state="stopped",
                    retry_after_s=RETRY_AFTER_SPOT_S,
                ) from None
            raise
        outcome.started = True
        outcome.instance_type = candidate
        outcome.extra["capacity_short"] = short
        if instance.is_spot and config.instance_type and config.instance_type != candidate:
            outcome.reason = (
                f"started as {candidate}: a Spot Instance keeps its type, INSTANCE_TYPE "
                f"{config.instance_type} is not applied"
            )
        return
    if current != declared:
        ec2.set_instance_type(config.instance_id, declared)
    spot_note = " (a Spot Instance keeps its type: no fallback types)" if instance.is_spot else ""
    raise RequestError(
        Code.NO_CAPACITY,
        f"AWS has no capacity for {', '.join(short)} in this zone right now{spot_note}; "
        f"try again in {RETRY_AFTER_NO_CAPACITY_S // 60} minutes",
        instance_id=config.instance_id,
        state="stopped",
        tried_instance_types=short,
        retry_after_s=RETRY_AFTER_NO_CAPACITY_S,
    )


def _ledger_safely(outcome: Outcome, action: Callable[[], None]) -> None:
    """Bookkeeping never fails a start or a stop: an SSM error is reported for the log instead."""
    try:
        action()
    except ClientError as exc:
        outcome.extra["ledger_error"] = f"{ec2.error_code(exc)}: {exc}"


def _outlast_stop_intent(
    config: Config,
    clock: Clock,
    request: StartRequest,
    instance: ec2.Instance,
    budget: float,
    outcome: Outcome,
) -> ec2.Instance:
    """After the lease write: a stop under way (a fresh intent) may stop this machine right now.

    The stop wrote its intent before its last lease read. If our lease came after that read, the stop
    goes on to StopInstances, and only the intent tells us: wait for its outcome (then the ordinary
    stopping/stopped path starts the instance again) or, when we cannot wait, say a stop is under way.
    Never "running" for a machine that is about to stop.
    """
    assert config.stop_intent_parameter is not None
    intent = records.read_stop_intent(config.stop_intent_parameter)
    if intent is None or not intent.under_way(clock.now()):
        return instance
    outcome.extra["stop_intent"] = f"a stop was under way (request {intent.request_id})"
    limit = min(STOPPING_WAIT_LIMIT_S, budget)
    if request.wait != "none" and limit > 0:

        def settled(current: ec2.Instance) -> bool:
            if current.state not in ("pending", "running"):
                return True
            latest = records.read_stop_intent(config.stop_intent_parameter or "")
            return latest is None or not latest.under_way(clock.now())

        instance, done = _wait_for(config, clock, clock.now() + timedelta(seconds=limit), settled)
        if done:
            outcome.extra["stop_intent"] += f"; waited for it, instance {instance.state}"
            return instance
    raise RequestError(
        Code.INSTANCE_STOPPING,
        "a stop of the instance is under way; call start again in "
        f"{RETRY_AFTER_STOPPING_S} s (the start request is recorded)",
        instance_id=config.instance_id,
        state="stopping",
        retry_after_s=RETRY_AFTER_STOPPING_S,
    )


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
        raise _gone(config, instance.state)
    if config.cap_parameter:
        from autostop import cap  # only with a cap: lean cold starts

        cap.guard_start(config, began, instance)
    records.write_lease(config.lease_parameter, began, request_id)
    if instance.state in ("pending", "running") and config.stop_intent_parameter:
        instance = _outlast_stop_intent(config, clock, request, instance, budget, outcome)

    if instance.state == "stopping":
        limit = STOPPING_WAIT_LIMIT_S if budget_s is None else min(STOPPING_WAIT_LIMIT_S, budget_s)
        deadline = clock.now() + timedelta(seconds=limit)
        instance, stopped = _wait_for(config, clock, deadline, lambda i: i.state != "stopping")
        if not stopped:
            raise RequestError(
                Code.INSTANCE_STOPPING,
                f"instance is still stopping after {limit:.0f} s; "
                f"call start again in {RETRY_AFTER_STOPPING_S} s",
                instance_id=config.instance_id,
                state="stopping",
                retry_after_s=RETRY_AFTER_STOPPING_S,
            )

    if instance.state == "stopped":
        _start_with_fallback(config, instance, outcome)
        instance = ec2.describe(config.instance_id)
        if outcome.started and config.ledger_parameter:
            from autostop import ledger

            _ledger_safely(outcome, lambda: ledger.on_start(config, clock.now(), instance))
    outcome.instance_type = outcome.instance_type or instance.instance_type
    outcome.decision = "started" if outcome.started else "already_" + instance.state
    outcome.reason = outcome.reason or (
        f"started as {outcome.instance_type}" if outcome.started else f"instance already {instance.state}"
    )

    ready = _ready(config, instance, clock.now())
    timed_out = False
    if (request.wait == "running" and instance.state != "running") or (request.wait == "ready" and not ready):

        def reached(current: ec2.Instance) -> bool:
            if current.state in GONE_STATES:
                raise _gone(config, current.state)
            if request.wait == "running":
                return current.state == "running"
            return _ready(config, current, clock.now())

        instance, done = _wait_for(config, clock, began + timedelta(seconds=budget), reached)
        timed_out = not done
        ready = done if request.wait == "ready" else _ready(config, instance, clock.now())
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
    reading = records.read_agent_state(config.agent_state_parameter, config.instance_id, now)
    record = reading.record
    lease = records.read_lease(config.lease_parameter, now)
    policy = StopPolicy.from_config(config)
    current = agent_is_current(record, now, policy, instance.launch_time)
    usable = record if current else None
    on = instance.state in ("pending", "running")
    since = idle_since(usable, lease, instance.launch_time) if instance.state == "running" else None
    if reading.status == "invalid":
        agent = "invalid"  # never read as idle: the stop rule treats the agent as silent
    elif record is None:
        agent = "missing"
    elif not record.is_of_boot(instance.launch_time):
        agent = "earlier_boot"
    else:
        agent = "current" if current else "stale"
    return {
        "ok": True,
        "instance_id": config.instance_id,
        "state": instance.state,
        "ready": is_ready(instance, record, now, config),
        "ready_at": iso(usable.ready_at) if usable and usable.comfyui_ready else None,
        "public_ip": instance.public_ip,
        "comfyui_url": comfyui_url(config, instance.public_ip),
        "queue_depth": usable.queue_depth if usable and instance.state == "running" else None,
        "idle_minutes": round(max((now - since).total_seconds(), 0) / 60, 2) if since else None,
        "running_since": iso(instance.launch_time) if on else None,
        "instance_type": instance.instance_type,
        "agent": agent,
        "agent_problem": reading.problem if reading.status == "invalid" else None,
        "phase": usable.phase if usable and instance.state == "running" else None,
    }


def session_cost(config: Config, instance: ec2.Instance, now: datetime) -> tuple[float, float | None]:
    """Hours since launch and their estimated cost (None when the price is unknown)."""
    from autostop.pricing import hourly_price  # only on a stop: keeps status/start imports lean

    hours = (now - instance.launch_time).total_seconds() / 3600 if instance.launch_time else 0.0
    price = hourly_price(instance.instance_type, config.region, config.hourly_price_usd)
    return hours, None if price is None else round(hours * price, 2)


#: StopInstances answered with one of these previous states: this invocation made the stop.
STOPPED_BY_US = ("running", "pending")


def _stop_message(
    instance: ec2.Instance,
    trigger: StopTrigger,
    verdict: Verdict | None,
    hours: float,
    cost: float | None,
) -> tuple[str, str]:
    cost_text = "unknown (no price for this type and region)" if cost is None else f"${cost:.2f}"
    trig = trigger.kind + (f" {trigger.alarm_name}" if trigger.alarm_name else "")
    if verdict is None:
        subject = f"gpu-autostop: {instance.instance_id} emergency stop"
        why = f"forced stop ({trigger.reason or 'no reason given'})"
    elif verdict.code == "silent_stop":
        subject = f"gpu-autostop: {instance.instance_id} stopped: agent not running"
        why = verdict.reason
    elif verdict.code == "install_timeout":
        subject = f"gpu-autostop: {instance.instance_id} stopped: install did not finish"
        why = verdict.reason
    else:
        idle = round(verdict.idle_minutes or 0.0, 1)
        subject = f"gpu-autostop: {instance.instance_id} stopped after {idle:g} idle minutes"
        why = verdict.reason
    lines = [
        f"gpu-autostop stopped instance {instance.instance_id} ({instance.instance_type}).",
        "",
        f"Why: {why}",
        f"Trigger: {trig}",
        f"Running since: {iso(instance.launch_time)} ({hours:.2f} hours)",
        f"Estimated session cost: {cost_text}",
    ]
    if verdict is not None and verdict.code == "silent_stop":
        lines += [
            "",
            "The on-instance agent is not running (no current state record) and CloudWatch had no "
            "CPU and network data, so nothing could see whether a job was running. This is the one "
            "stop made without that check: a GPU billed forever is the worse failure. After the next "
            "start, look at the agent: `journalctl -u gpu-autostop-agent` on the instance.",
        ]
    elif verdict is not None and verdict.code == "install_timeout":
        lines += [
            "",
            "The first-boot install of ComfyUI did not finish in time. After the next start, look "
            "at it: `journalctl -u gpu-autostop-bootstrap` on the instance.",
        ]
    elif verdict is not None and verdict.agent_silent:
        lines += [
            "",
            "Note: the on-instance agent is silent (no current state record), so this decision used "
            "CloudWatch EC2 metrics. After the next start, check the agent: "
            "`journalctl -u gpu-autostop-agent` on the instance.",
        ]
    lines += ["", "Nothing to do: the next start request starts it again."]
    return subject, "\n".join(lines)


def _alert_silent_once(
    config: Config, now: datetime, instance: ec2.Instance, verdict: Verdict, outcome: Outcome
) -> None:
    """One email per boot when the agent is silent and CloudWatch says nothing (a note in SSM)."""
    if verdict.silent_minutes is None or verdict.silent_minutes < SILENT_ALERT_MINUTES:
        return
    if not config.silent_note_parameter:
        outcome.extra["silent_alert"] = "no SILENT_NOTE_PARAMETER: not alerted"
        return
    if records.read_silent_note(config.silent_note_parameter) == instance.launch_time:
        outcome.extra["silent_alert"] = "already alerted for this boot"
        return
    from autostop import notify

    subject = f"gpu-autostop: {instance.instance_id} agent not running, nothing to see"
    message = "\n".join(
        [
            f"The on-instance agent of {instance.instance_id} ({instance.instance_type}) is not running "
            f"or cannot write its state record, and CloudWatch has no usable EC2 data.",
            "",
            f"Why: {verdict.reason}",
            f"Running since: {iso(instance.launch_time)}",
            "",
            f"The stop function keeps the instance for now, and stops it after "
            f"{config.silent_stop_minutes:g} minutes without a sign of life (a start request counts), "
            "without being able to see whether a job runs.",
            "Look at the agent: `journalctl -u gpu-autostop-agent` on the instance, or stop it now with "
            "`make stop`.",
        ]
    )
    notify.publish(config.alert_topic_arn, subject, message)
    records.write_silent_note(config.silent_note_parameter, instance.launch_time, now)
    outcome.extra["silent_alert"] = "sent"


def _intend_stop(config: Config, clock: Clock, request_id: str | None) -> None:
    """Tell a concurrent start that StopInstances may follow (BEFORE the last lease read)."""
    if config.stop_intent_parameter:
        records.write_stop_intent(config.stop_intent_parameter, clock.now(), request_id)


def _resolve_intent(config: Config, clock: Clock, request_id: str | None, outcome: Outcome) -> None:
    """The intent's outcome, so that a waiting start stops waiting; a failure is only logged."""
    if not config.stop_intent_parameter:
        return
    result = "stopped" if outcome.stopped else outcome.decision
    try:
        records.write_stop_intent(config.stop_intent_parameter, clock.now(), request_id, result)
    except ClientError as exc:
        outcome.extra["intent_error"] = f"{ec2.error_code(exc)}: {exc}"


def stop(
    config: Config, clock: Clock, trigger: StopTrigger, *, request_id: str | None = None
) -> tuple[dict[str, Any], Outcome]:
    """Stop the instance when the stop rule says so (or when forced)."""
    now = clock.now()
    outcome = Outcome()
    instance = ec2.describe(config.instance_id)
    verdict: Verdict | None = None
    record: AgentRecord | None = None
    if config.ledger_parameter and instance.state in ("stopping", "stopped"):
        from autostop import ledger

        _ledger_safely(outcome, lambda: ledger.reconcile(config, now))
    if config.cap_parameter and not trigger.force and instance.state in ("pending", "running"):
        from autostop import cap

        capped = cap.enforce(config, now, instance)  # the hard cap, before (and apart from) the idle rule
        if capped is not None:
            outcome.stopped, why = capped
            outcome.decision, outcome.reason = "hard_cap", f"hard cap: {why}"
            if outcome.stopped:
                _after_stop(config, now, instance, outcome, None)
            return _stop_answer(config, outcome, None), outcome
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
        _intend_stop(config, clock, request_id)
    else:
        reading = records.read_agent_state(config.agent_state_parameter, config.instance_id, now)
        record = reading.record
        if reading.status == "invalid":
            outcome.extra["agent_invalid"] = reading.problem
        lease_reading = records.read_lease_reading(config.lease_parameter, now)
        if lease_reading.problem:
            outcome.extra["lease_problem"] = lease_reading.problem
        lease = lease_reading.requested_at
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
            _alert_silent_once(config, now, instance, verdict, outcome)
            return _stop_answer(config, outcome, verdict), outcome
        _intend_stop(config, clock, request_id)
        # A start request may have arrived while we decided: it wins. This is the last lease read;
        # a start whose lease comes later reads the intent written just above and waits for us.
        if records.read_lease_reading(config.lease_parameter, now).requested_at != lease:
            outcome.decision, outcome.reason = (
                "lease_renewed",
                "a start request arrived while deciding",
            )
            _resolve_intent(config, clock, request_id, outcome)
            return _stop_answer(config, outcome, verdict), outcome
    try:
        previous = ec2.stop(config.instance_id)
    except ClientError as exc:
        if ec2.error_code(exc) != "IncorrectInstanceState":
            raise
        outcome.decision, outcome.reason = "state_changed", "instance changed state before the stop"
        _resolve_intent(config, clock, request_id, outcome)
        return _stop_answer(config, outcome, verdict), outcome
    if previous not in STOPPED_BY_US:
        # Another invocation's StopInstances came first: it notifies and closes the session, not us.
        outcome.decision, outcome.reason = (
            "already_stopping",
            f"the instance was already {previous or 'changing state'}: another stop came first",
        )
        _resolve_intent(config, clock, request_id, outcome)
        return _stop_answer(config, outcome, verdict), outcome
    outcome.stopped = True
    hours, cost = _after_stop(config, now, instance, outcome, record)
    subject, message = _stop_message(instance, trigger, verdict, hours, cost)
    from autostop import notify

    notify.publish(config.alert_topic_arn, subject, message)
    _resolve_intent(config, clock, request_id, outcome)
    return _stop_answer(config, outcome, verdict), outcome


def _after_stop(
    config: Config,
    now: datetime,
    instance: ec2.Instance,
    outcome: Outcome,
    record: AgentRecord | None,
) -> tuple[float, float | None]:
    """The session's hours and cost for the answer, and the session closed in the usage ledger."""
    hours, cost = session_cost(config, instance, now)
    outcome.extra.update(session_hours=round(hours, 3), session_cost_usd=cost)
    if config.ledger_parameter:
        from autostop import ledger

        if record is None:
            record = records.read_agent_record(config.agent_state_parameter, config.instance_id, now)
        _ledger_safely(outcome, lambda: ledger.on_stop(config, now, instance, record))
    return hours, cost


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
