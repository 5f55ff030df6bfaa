"""The hard cap: both paths (own estimate on start and re-check; Budgets -> SNS -> function), the
refusal that changes nothing, the reset, and the usage ledger kept by start and stop."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from autostop import cap, control, ledger
from autostop.cap import CapState
from autostop.cost_events import parse_budget, parse_budget_message
from autostop.errors import RequestError
from autostop.events import StopTrigger, parse_start
from autostop.handlers import _common, budget
from autostop.handlers import start as start_handler
from gpu_autostop_cli.__main__ import main as operator

from .conftest import LAUNCH, Env, FakeContext, iso

CAP = "/gpu-autostop/cap"
LEDGER = "/gpu-autostop/ledger"
EVENTS = Path(__file__).parent / "events"
SCHEDULE = StopTrigger("schedule")


@pytest.fixture
def capped(env: Env) -> Env:
    env.with_config(cap_parameter=CAP, ledger_parameter=LEDGER, hard_cap_usd=50.0, fixed_monthly_usd=0.0)
    return env


def put(env: Env, name: str, value: object) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    env.client("ssm").put_parameter(Name=name, Value=text, Type="String", Overwrite=True)


def get(env: Env, name: str) -> dict[str, Any] | None:
    ssm = env.client("ssm")
    try:
        return json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])  # type: ignore[no-any-return]
    except ssm.exceptions.ParameterNotFound:
        return None


def spend(env: Env, usd: float) -> None:
    """A ledger whose closed sessions this month cost ``usd``."""
    now = env.clock.now()
    book = ledger.Ledger.empty(now)
    book.current.cost_usd = usd
    put(env, LEDGER, book.dumps())


def trip_flag(env: Env, reason: str = "test") -> None:
    put(env, CAP, CapState(True, env.clock.now(), "budget", reason).dumps())


def start(env: Env) -> dict[str, Any]:
    answer, _ = control.start(env.config, env.clock, parse_start({}), request_id="req-1")
    return answer


def stop(env: Env, trigger: StopTrigger = SCHEDULE) -> dict[str, Any]:
    answer, _ = control.stop(env.config, env.clock, trigger)
    return answer


def busy(env: Env) -> None:
    env.write_record(queue_running=1, last_activity_at=iso(env.clock.now()))


# --- start ----------------------------------------------------------------------------------------


def test_start_is_refused_while_tripped_and_changes_nothing(capped: Env) -> None:
    capped.set_state("stopped")
    trip_flag(capped, "AWS Budgets: the actual cost of budget gpu-autostop-hard-cap reached $61.37")
    with pytest.raises(RequestError) as refused:
        start(capped)
    answer = refused.value.answer()
    assert answer["ok"] is False
    assert answer["error"]["code"] == "BudgetExceeded"
    assert "make reset-cap" in answer["error"]["message"]
    assert "$61.37" in answer["error"]["message"]
    assert capped.calls.mutating_ec2 == []
    assert capped.lease() is None
    assert capped.state() == "stopped"
    assert capped.notifications() == []


def test_start_handler_answers_budget_exceeded(capped: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "INSTANCE_ID": capped.instance_id,
        "AGENT_STATE_PARAMETER": capped.config.agent_state_parameter,
        "LEASE_PARAMETER": capped.config.lease_parameter,
        "CAP_PARAMETER": CAP,
        "LEDGER_PARAMETER": LEDGER,
        "HARD_CAP_USD": "50",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(_common, "clock", lambda: capped.clock)
    _common.config.cache_clear()
    capped.set_state("stopped")
    trip_flag(capped)
    answer = start_handler.handler({"wait": "ready"}, FakeContext())
    assert answer["ok"] is False
    assert answer["error"]["code"] == "BudgetExceeded"
    assert capped.state() == "stopped"


def test_start_trips_the_cap_when_the_estimate_reached_it(capped: Env) -> None:
    capped.set_state("stopped")
    spend(capped, 50.5)
    with pytest.raises(RequestError, match=r"reached the hard cap of \$50\.00"):
        start(capped)
    assert capped.calls.mutating_ec2 == []
    flag = get(capped, CAP)
    assert flag is not None
    assert flag["tripped"] is True
    assert flag["source"] == "estimate"
    [note] = capped.notifications()
    assert note["Subject"].startswith("gpu-autostop: hard cap reached")
    assert "make reset-cap" in note["Message"]


def test_start_under_the_cap_starts_and_opens_a_ledger_session(capped: Env) -> None:
    capped.set_state("stopped")
    capped.set_launch_time(capped.clock.now())  # real EC2 sets LaunchTime at the start
    spend(capped, 10.0)
    assert start(capped)["started"] is True
    book = get(capped, LEDGER)
    assert book is not None
    assert book["starts"] == 1
    assert book["open"]["launch_time"] == iso(capped.clock.now())
    assert book["open"]["price"] == 0.526
    assert book["cost_usd"] == 10.0


def test_an_unreadable_flag_counts_as_tripped(capped: Env) -> None:
    capped.set_state("stopped")
    put(capped, CAP, "garbage")
    with pytest.raises(RequestError, match="unreadable"):
        start(capped)
    assert capped.calls.mutating_ec2 == []


def test_without_a_cap_parameter_nothing_is_checked(env: Env) -> None:
    env.set_state("stopped")
    trip_flag(env)
    assert start(env)["started"] is True
    assert "GetParameters" not in env.calls.names


# --- stop re-check ----------------------------------------------------------------------------------


def test_the_recheck_stops_a_busy_instance_when_the_estimate_reached_the_cap(capped: Env) -> None:
    busy(capped)
    spend(capped, 49.9)  # + 30 running minutes at ~$0.53/h passes $50
    answer = stop(capped)
    assert answer["stopped"] is True
    assert answer["decision"] == "hard_cap"
    assert "reached the hard cap of $50.00" in answer["reason"]
    assert capped.state() == "stopped"
    assert get(capped, CAP)["tripped"] is True  # type: ignore[index]
    [note] = capped.notifications()
    assert "hard cap reached, stopped instance" in note["Subject"]
    book = get(capped, LEDGER)
    assert book is not None
    assert book["seconds"] == 1800
    assert book["open"] is None


def test_the_recheck_under_the_cap_leaves_the_decision_to_the_stop_rule(capped: Env) -> None:
    busy(capped)
    spend(capped, 10.0)
    answer = stop(capped)
    assert answer["stopped"] is False
    assert answer["decision"] == "queue_busy"
    assert get(capped, CAP) is None


def test_a_tripped_flag_stops_an_instance_started_outside_the_project(capped: Env) -> None:
    busy(capped)
    trip_flag(capped, "AWS Budgets: over")
    answer = stop(capped)
    assert answer["decision"] == "hard_cap"
    assert answer["stopped"] is True
    assert "AWS Budgets: over" in answer["reason"]


def test_a_forced_stop_is_a_plain_forced_stop(capped: Env) -> None:
    trip_flag(capped)
    answer = stop(capped, StopTrigger("manual", force=True, reason="make stop"))
    assert answer["decision"] == "forced"
    assert answer["stopped"] is True


def test_the_estimate_counts_closed_sessions_the_running_one_and_fixed_costs(capped: Env) -> None:
    capped.with_config(fixed_monthly_usd=30.0)
    spend(capped, 5.0)
    now = capped.clock.now()  # 2026-11-22 08:30, 30 minutes after the launch
    check = cap.check(capped.config, now, control.ec2.describe(capped.instance_id))
    assert check.estimate is not None
    elapsed = (now - datetime(2026, 11, 1, tzinfo=now.tzinfo)).total_seconds() / (30 * 86400)
    assert check.estimate.fixed_usd == pytest.approx(30.0 * elapsed, abs=1e-3)
    assert check.estimate.closed_usd == pytest.approx(5.0)
    assert 0.5 * 0.526 < check.estimate.running_usd < 0.5 * 0.54  # + public IP and metrics per hour
    assert check.estimate.hours == pytest.approx(0.5)
    assert check.cap_usd == 50.0


# --- reset --------------------------------------------------------------------------------------------


def test_reset_lets_starts_through_again(capped: Env) -> None:
    capped.set_state("stopped")
    trip_flag(capped)
    with pytest.raises(RequestError):
        start(capped)
    cap.reset(CAP, capped.clock.now())
    assert start(capped)["started"] is True


def test_reset_with_extra_allowance_raises_the_cap_for_this_month(capped: Env) -> None:
    capped.set_state("stopped")
    spend(capped, 55.0)
    with pytest.raises(RequestError):
        start(capped)  # trips
    cap.reset(CAP, capped.clock.now())
    with pytest.raises(RequestError):
        start(capped)  # still over: trips again
    cap.reset(CAP, capped.clock.now(), extra_usd=20)
    assert start(capped)["started"] is True
    capped.clock.set(datetime(2026, 12, 1, 9, tzinfo=capped.clock.now().tzinfo))
    assert cap.read_state(CAP).extra_for(capped.clock.now()) == 0  # the allowance ends with the month


def test_cap_command_line(capped: Env, capsys: pytest.CaptureFixture[str]) -> None:
    trip_flag(capped, "over budget")
    assert operator(["cap", "status", "--parameter", CAP]) == 0
    assert "TRIPPED" in capsys.readouterr().out
    assert operator(["cap", "reset", "--parameter", CAP, "--extra-usd", "15"]) == 0
    out = capsys.readouterr().out
    assert "reset" in out
    assert "$15" in out
    assert cap.read_state(CAP).tripped is False
    assert operator(["cap", "status", "--parameter", CAP]) == 0
    assert "not tripped" in capsys.readouterr().out


# --- the Budgets path ---------------------------------------------------------------------------------


def budget_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())  # type: ignore[no-any-return]


def test_the_budget_message_is_read() -> None:
    [notice] = parse_budget(budget_event("budget_actual.json"))
    assert notice.kind == "ACTUAL"
    assert notice.budget_name == "gpu-autostop-hard-cap"
    assert notice.amount_usd == 61.37
    assert notice.threshold_usd == 60.0
    [forecast] = parse_budget(budget_event("budget_forecast.json"))
    assert forecast.kind == "FORECASTED"
    assert parse_budget_message("", "hello") is None
    assert (
        parse_budget_message(
            "AWS Budgets: x", "The ACTUAL Cost associated with this budget is $1,234.50."
        ).amount_usd
        == 1234.5
    )  # type: ignore[union-attr]


def lambda_env(env: Env, monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    for key, value in {
        "INSTANCE_ID": env.instance_id,
        "AGENT_STATE_PARAMETER": env.config.agent_state_parameter,
        "LEASE_PARAMETER": env.config.lease_parameter,
        "ALERT_TOPIC_ARN": env.topic_arn,
        "CAP_PARAMETER": CAP,
        "LEDGER_PARAMETER": LEDGER,
        **extra,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(_common, "clock", lambda: env.clock)
    _common.config.cache_clear()


def test_an_actual_budget_notification_trips_stops_and_emails(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    lambda_env(env, monkeypatch, HARD_CAP_USD="60")
    busy(env)
    answer = budget.handler(budget_event("budget_actual.json"), FakeContext())
    assert answer["ok"] is True
    assert answer["newly_tripped"] is True
    assert answer["stopped"] is True
    assert env.state() == "stopped"
    flag = get(env, CAP)
    assert flag is not None
    assert flag["tripped"] is True
    assert flag["source"] == "budget"
    assert "$61.37" in flag["reason"]
    [note] = env.notifications()
    assert "hard cap reached" in note["Subject"]
    # The next start is refused.
    env.with_config(cap_parameter=CAP)
    with pytest.raises(RequestError, match=r"hard spend cap"):
        start(env)


def test_a_second_notification_changes_nothing_more(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    lambda_env(env, monkeypatch)
    budget.handler(budget_event("budget_actual.json"), FakeContext())
    env.notifications()
    again = budget.handler(budget_event("budget_actual.json"), FakeContext())
    assert again["newly_tripped"] is False
    assert again["stopped"] is False
    assert env.notifications() == []
    assert env.calls.of("StopInstances") == 1


def test_a_forecast_never_trips(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    lambda_env(env, monkeypatch)
    answer = budget.handler(budget_event("budget_forecast.json"), FakeContext())
    assert answer["tripped"] is False
    assert "forecast" in answer["decisions"][0]
    assert env.state() == "running"
    assert get(env, CAP) is None


def test_an_actual_amount_below_the_cap_does_not_trip(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    lambda_env(env, monkeypatch, HARD_CAP_USD="100")
    answer = budget.handler(budget_event("budget_actual.json"), FakeContext())
    assert answer["tripped"] is False
    assert "below the hard cap" in answer["decisions"][0]
    assert env.state() == "running"


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ({}, "InvalidEvent"),
        ({"Records": [{"EventSource": "aws:sqs"}]}, "InvalidEvent"),
        (
            {"Records": [{"EventSource": "aws:sns", "Sns": {"Subject": "hi", "Message": "hello"}}]},
            "NotABudgetNotification",
        ),
    ],
)
def test_other_events_are_refused_without_change(
    env: Env, monkeypatch: pytest.MonkeyPatch, event: dict[str, Any], code: str
) -> None:
    lambda_env(env, monkeypatch)
    answer = budget.handler(event, FakeContext())
    assert answer["error"]["code"] == code
    assert env.calls.names == []


# --- the ledger kept by start and stop ------------------------------------------------------------------


def test_an_idle_stop_closes_the_session_with_its_images(capped: Env) -> None:
    capped.write_record(last_activity_at=iso(capped.clock.now() - timedelta(minutes=15)), images_completed=7)
    assert stop(capped)["stopped"] is True
    book = get(capped, LEDGER)
    assert book is not None
    assert (book["seconds"], book["starts"], book["images"]) == (1800, 1, 7)  # a boot it did not see start
    assert book["last_closed_launch"] == iso(LAUNCH)


def test_a_stop_the_project_did_not_make_is_closed_at_the_last_heartbeat(capped: Env) -> None:
    book = ledger.Ledger.empty(capped.clock.now())
    book.record_start(LAUNCH, LAUNCH, "g4dn.xlarge", 0.526)
    put(capped, LEDGER, book.dumps())
    capped.write_record(heartbeat_at=iso(LAUNCH + timedelta(minutes=20)), images_completed=4)
    capped.set_state("stopped")  # the agent's self-stop, say
    answer = stop(capped)
    assert answer["decision"] == "not_running"
    closed = get(capped, LEDGER)
    assert closed is not None
    assert closed["seconds"] == 1200
    assert closed["images"] == 4
    assert closed["starts"] == 1
    assert closed["open"] is None
    stop(capped)  # the next re-check changes nothing
    assert get(capped, LEDGER) == closed


def test_a_ledger_failure_never_fails_a_start(capped: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    capped.set_state("stopped")

    def refuse(*_: object, **__: object) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutParameter")

    monkeypatch.setattr(ledger, "write", refuse)
    answer, outcome = control.start(capped.config, capped.clock, parse_start({}))
    assert answer["started"] is True
    assert "AccessDeniedException" in outcome.extra["ledger_error"]


def test_a_start_while_running_over_the_cap_trips_and_the_recheck_stops(capped: Env) -> None:
    """The start function never stops the instance itself (no StopInstances for it); the re-check does."""
    busy(capped)
    spend(capped, 55.0)
    with pytest.raises(RequestError, match=r"hard spend cap"):
        start(capped)
    assert capped.calls.mutating_ec2 == []
    [note] = capped.notifications()
    assert "stopped at the next re-check" in note["Subject"]
    answer = stop(capped)
    assert answer["decision"] == "hard_cap"
    assert answer["stopped"] is True
    [again] = capped.notifications()
    assert "stopped instance" in again["Subject"]
