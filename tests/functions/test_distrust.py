"""Issue 13, the Lambda side: no input from outside a function reads as "idle" unless it says so.

Classes: (1) a record that does not validate is never "queue empty, no session"; (2) a time in the
future never keeps the instance up, half-measured metrics are not idle, a silent agent without
metrics alerts once and is stopped after SILENT_STOP_MINUTES; the "installing" phase (contract);
(3) a start during a stop is never answered "running"; (5) two racing stops send one email.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from autostop import aws, control, ec2, records
from autostop.errors import RequestError
from autostop.events import StartRequest, StopTrigger

from .conftest import LAUNCH, Env, iso

SCHEDULE = StopTrigger("schedule")
INTENT = "/gpu-autostop/stop-intent"
NOTE = "/gpu-autostop/silent-note"


def stop(env: Env, trigger: StopTrigger = SCHEDULE) -> dict[str, Any]:
    answer, _ = control.stop(env.config, env.clock, trigger, request_id="stop-1")
    return answer


def old_activity(env: Env) -> str:
    return iso(env.clock.now() - timedelta(minutes=25))


def status(env: Env) -> dict[str, Any]:
    return control.status(env.config, env.clock)


# --- 1. Stopped under a job: a record that does not validate is not an idle record ---------------

BAD_COUNTS = [
    pytest.param("1", id="string"),
    pytest.param(1.5, id="fraction"),
    pytest.param(True, id="boolean"),
    pytest.param([1], id="list"),
    pytest.param(None, id="null"),
    pytest.param(-1, id="negative"),
    pytest.param({"n": 1}, id="object"),
]


@pytest.mark.parametrize("key", ["queue_running", "queue_pending", "sessions"])
@pytest.mark.parametrize("bad", BAD_COUNTS)
def test_a_bad_count_is_never_read_as_idle(env: Env, key: str, bad: Any) -> None:
    env.write_record(last_activity_at=old_activity(env), **{key: bad})
    answer = stop(env)
    assert answer["stopped"] is False, answer
    assert answer["decision"] == "no_metrics"  # the agent counts as silent: CloudWatch decides
    assert answer["agent_silent"] is True
    assert env.calls.of("GetMetricStatistics") == 2
    assert env.calls.of("StopInstances") == 0
    seen = status(env)
    assert seen["agent"] == "invalid"
    assert key in seen["agent_problem"]


@pytest.mark.parametrize(
    "key", ["queue_running", "queue_pending", "sessions", "heartbeat_at", "comfyui_ready"]
)
def test_a_missing_key_makes_the_record_invalid(env: Env, key: str) -> None:
    record = env.write_record(last_activity_at=old_activity(env))
    del record[key]
    env.write_raw_record(json.dumps(record))
    assert stop(env)["stopped"] is False
    assert env.calls.of("StopInstances") == 0
    assert status(env)["agent"] == "invalid"


def test_infinity_is_not_a_count(env: Env) -> None:
    record = env.write_record(last_activity_at=old_activity(env))
    text = json.dumps(record).replace('"queue_running": 0', '"queue_running": Infinity')
    env.write_raw_record(text)
    assert stop(env)["decision"] == "no_metrics"
    assert status(env)["agent"] == "invalid"


@pytest.mark.parametrize("version", [3, 0, "1", None, True, 1.5])
def test_an_unknown_record_version_is_invalid(env: Env, version: Any) -> None:
    env.write_record(last_activity_at=old_activity(env), v=version)
    assert stop(env)["stopped"] is False
    assert env.calls.of("StopInstances") == 0
    answer = status(env)
    assert answer["agent"] == "invalid"
    assert "version" in answer["agent_problem"]


def test_a_whole_float_count_is_read_as_that_number(env: Env) -> None:
    env.write_record(last_activity_at=old_activity(env), queue_running=2.0)
    answer = stop(env)
    assert answer["decision"] == "queue_busy"
    assert "2 running" in answer["reason"]
    assert status(env)["queue_depth"] == 2


def test_an_invalid_record_is_logged_with_its_reason_and_the_quote_is_capped(env: Env) -> None:
    env.write_record(last_activity_at=old_activity(env), sessions="x" * 5000)
    problem = status(env)["agent_problem"]
    assert problem.startswith("sessions must be a whole number")
    assert len(problem) < 200
    assert problem.endswith("\u2026")


# --- 2. Kept running forever -------------------------------------------------------------------


def test_a_heartbeat_in_the_future_is_distrusted_and_not_ready(env: Env) -> None:
    env.write_record(heartbeat_at=iso(env.clock.now() + timedelta(days=365)))
    answer = status(env)
    assert answer["agent"] == "invalid"
    assert answer["ready"] is False
    assert "future" in answer["agent_problem"]


def test_a_last_activity_in_the_future_does_not_keep_the_instance(env: Env) -> None:
    env.write_record(last_activity_at=iso(env.clock.now() + timedelta(hours=2)))
    env.put_ec2_metric("CPUUtilization", 1.0, minutes_ago=3)
    env.put_ec2_metric("NetworkOut", 1000.0, minutes_ago=3)
    answer = stop(env)
    assert answer["stopped"] is True
    assert answer["decision"] == "idle_by_metrics"


def test_a_ready_time_in_the_future_is_not_ready(env: Env) -> None:
    env.write_record(ready_at=iso(env.clock.now() + timedelta(minutes=10)))
    assert status(env)["ready"] is False


def test_a_small_clock_skew_is_tolerated(env: Env) -> None:
    env.write_record(heartbeat_at=iso(env.clock.now() + timedelta(seconds=30)))
    assert status(env)["agent"] == "current"


def test_a_lease_in_the_future_does_not_keep_the_instance(env: Env) -> None:
    env.write_record(last_activity_at=old_activity(env))
    env.write_lease(env.clock.now() + timedelta(days=30))
    answer, outcome = control.stop(env.config, env.clock, SCHEDULE)
    assert answer["stopped"] is True
    assert answer["decision"] == "idle"
    assert "in the future" in outcome.extra["lease_problem"]


@pytest.mark.parametrize("present", ["CPUUtilization", "NetworkOut"])
def test_one_idle_metric_alone_is_not_idle(env: Env, present: str) -> None:
    env.write_record(heartbeat_at=iso(env.clock.now() - timedelta(minutes=10)))  # stale
    env.put_ec2_metric(present, 0.0, minutes_ago=3)
    answer = stop(env)
    assert answer["stopped"] is False
    assert answer["decision"] == "metrics_incomplete"
    assert env.calls.of("StopInstances") == 0


def test_agent_down_for_good_alerts_once_then_stops_and_says_the_agent_is_not_running(env: Env) -> None:
    env.with_config(silent_note_parameter=NOTE, silent_stop_minutes=90)
    env.write_record(heartbeat_at=iso(LAUNCH + timedelta(minutes=2)))  # the agent died at +2 min
    env.clock.set(LAUNCH + timedelta(minutes=15))  # 13 quiet minutes: basic metrics may still lag
    assert stop(env)["decision"] == "no_metrics"
    assert env.notifications() == []

    env.clock.set(LAUNCH + timedelta(minutes=20))  # 18 quiet minutes: one alert
    answer = stop(env)
    assert answer["decision"] == "no_metrics"
    assert answer["stopped"] is False
    [alert] = env.notifications()
    assert "agent not running" in alert["Subject"]
    assert "journalctl -u gpu-autostop-agent" in alert["Message"]
    assert "stops it after 90 minutes" in alert["Message"]

    env.clock.set(LAUNCH + timedelta(minutes=60))
    assert stop(env)["stopped"] is False
    assert env.notifications() == []  # once per boot (the note in SSM)

    env.clock.set(LAUNCH + timedelta(minutes=92))  # 90 minutes without a sign of life
    answer = stop(env)
    assert answer["stopped"] is True
    assert answer["decision"] == "silent_stop"
    assert env.state() == "stopped"
    [email] = env.notifications()
    assert email["Subject"].endswith("stopped: agent not running")
    assert "agent is not running" in email["Message"]
    assert "nothing could see whether a job was running" in email["Message"]


def test_a_start_request_counts_as_a_sign_of_life_for_the_silent_stop(env: Env) -> None:
    env.with_config(silent_note_parameter=NOTE, silent_stop_minutes=90)
    env.clock.set(LAUNCH + timedelta(minutes=100))
    env.write_lease(env.clock.now() - timedelta(minutes=30))
    answer = stop(env)
    assert answer["decision"] == "no_metrics"
    assert env.calls.of("StopInstances") == 0


def test_a_new_boot_may_alert_again(env: Env) -> None:
    env.with_config(silent_note_parameter=NOTE)
    env.clock.set(LAUNCH + timedelta(minutes=20))
    stop(env)
    assert len(env.notifications()) == 1
    env.set_launch_time(LAUNCH + timedelta(hours=5))
    env.clock.set(LAUNCH + timedelta(hours=5, minutes=20))
    stop(env)
    assert len(env.notifications()) == 1


# --- 2b. The installing phase (record v2, contract-installing.md) ------------------------------


def installing(env: Env, started: Any, **fields: Any) -> None:
    env.write_record(
        v=2,
        phase="installing",
        install_started_at=started,
        comfyui_ready=False,
        ready_at=None,
        last_activity_at=None,
        **fields,
    )


def test_an_install_keeps_the_instance_until_the_timeout(env: Env) -> None:
    installing(env, iso(env.clock.now() - timedelta(minutes=20)))
    answer = stop(env)
    assert answer["decision"] == "installing"
    assert answer["stopped"] is False
    seen = status(env)
    assert seen["phase"] == "installing"
    assert seen["ready"] is False


def test_an_install_past_the_timeout_stops_with_an_email_saying_where_to_look(env: Env) -> None:
    installing(env, iso(env.clock.now() - timedelta(minutes=46)))
    answer = stop(env)
    assert answer["stopped"] is True
    assert answer["decision"] == "install_timeout"
    [email] = env.notifications()
    assert "did not finish in 45 minutes" in email["Message"]
    assert "journalctl -u gpu-autostop-bootstrap" in email["Message"]


@pytest.mark.parametrize("started", [None, "garbage", "2099-01-01T00:00:00Z"])
def test_a_missing_or_future_install_start_counts_from_the_launch(env: Env, started: Any) -> None:
    env.clock.set(LAUNCH + timedelta(minutes=40))
    installing(env, started)
    assert stop(env)["decision"] == "installing"
    env.clock.set(LAUNCH + timedelta(minutes=46))
    installing(env, started)
    assert stop(env)["decision"] == "install_timeout"


def test_a_v2_serving_record_is_read_like_v1(env: Env) -> None:
    env.write_record(v=2, phase="serving", install_started_at=None, last_activity_at=old_activity(env))
    assert stop(env)["decision"] == "idle"


def test_a_v2_record_without_a_phase_is_invalid(env: Env) -> None:
    env.write_record(v=2, last_activity_at=old_activity(env))
    assert status(env)["agent"] == "invalid"


# --- 3. A start answered during a stop ---------------------------------------------------------


def test_a_start_between_the_stops_last_lease_read_and_stopinstances_is_not_told_running(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.with_config(stop_intent_parameter=INTENT)
    env.write_record(last_activity_at=old_activity(env))
    real_stop = ec2.stop
    answers: list[Any] = []

    def start_sneaks_in(instance_id: str) -> str | None:
        try:
            answers.append(control.start(env.config, env.clock, StartRequest("none", 0))[0])
        except RequestError as exc:
            answers.append(exc.answer())
        return real_stop(instance_id)

    monkeypatch.setattr(ec2, "stop", start_sneaks_in)
    assert stop(env)["stopped"] is True
    [answer] = answers
    assert answer["ok"] is False
    assert answer["error"]["code"] == "InstanceStopping"
    assert answer["retry_after_s"] > 0
    assert env.calls.of("StartInstances") == 0


def test_a_waiting_start_outlasts_the_stop_and_starts_again(env: Env) -> None:
    env.with_config(stop_intent_parameter=INTENT)
    records.write_stop_intent(INTENT, env.clock.now(), "stop-1")  # a stop is between its reads

    def the_stop_goes_through(_: Any) -> None:
        if env.state() == "running":
            env.client("ec2").stop_instances(InstanceIds=[env.instance_id])
            records.write_stop_intent(INTENT, env.clock.now(), "stop-1", "stopped")

    env.clock.on_sleep.append(the_stop_goes_through)
    answer, outcome = control.start(env.config, env.clock, StartRequest("running", 120))
    assert answer["state"] == "running"
    assert answer["started"] is True
    assert env.calls.of("StartInstances") == 1
    assert "waited for it" in outcome.extra["stop_intent"]


def test_a_declined_stop_lets_the_waiting_start_answer_running(env: Env) -> None:
    env.with_config(stop_intent_parameter=INTENT)
    records.write_stop_intent(INTENT, env.clock.now(), "stop-1")
    env.clock.on_sleep.append(
        lambda _: records.write_stop_intent(INTENT, env.clock.now(), "stop-1", "lease_renewed")
    )
    answer, _ = control.start(env.config, env.clock, StartRequest("running", 120))
    assert answer["state"] == "running"
    assert answer["started"] is False
    assert env.calls.of("StopInstances") == env.calls.of("StartInstances") == 0


def test_an_old_or_resolved_intent_is_ignored(env: Env) -> None:
    env.with_config(stop_intent_parameter=INTENT)
    records.write_stop_intent(INTENT, env.clock.now() - timedelta(minutes=5), "old")
    answer, _ = control.start(env.config, env.clock, StartRequest("none", 0))
    assert answer["state"] == "running"
    assert env.clock.slept == []


def test_the_stop_writes_its_intent_before_its_last_lease_read_and_resolves_it(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.with_config(stop_intent_parameter=INTENT)
    env.write_record(last_activity_at=old_activity(env))
    order: list[str] = []
    real_write, real_read = records.write_stop_intent, records.read_lease_reading
    monkeypatch.setattr(
        records, "write_stop_intent", lambda *a, **k: (order.append("intent"), real_write(*a, **k))[1]
    )
    monkeypatch.setattr(records, "read_lease_reading", lambda *a: (order.append("lease"), real_read(*a))[1])
    stop(env)
    assert order == ["lease", "intent", "lease", "intent"]
    intent = records.read_stop_intent(INTENT)
    assert intent is not None
    assert intent.outcome == "stopped"
    assert intent.request_id == "stop-1"


# --- 5. Two stops racing: one stop, one email --------------------------------------------------


def answer_stopinstances_with(env: Env, previous: str) -> None:
    """What real EC2 answers the second of two concurrent StopInstances calls (moto cannot race)."""

    def canned(**_: Any) -> tuple[Any, dict[str, Any]]:
        change = {
            "InstanceId": env.instance_id,
            "PreviousState": {"Code": 64, "Name": previous},
            "CurrentState": {"Code": 64, "Name": "stopping"},
        }
        return AWSResponse("https://ec2.amazonaws.com/", 200, {}, None), {
            "StoppingInstances": [change],
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    aws.client("ec2").meta.events.register("before-call.ec2.StopInstances", canned)


@pytest.mark.parametrize("previous", ["stopping", "stopped"])
def test_the_stop_that_did_not_make_the_stop_sends_no_email(env: Env, previous: str) -> None:
    env.with_config(ledger_parameter="/gpu-autostop/ledger")
    env.write_record(last_activity_at=old_activity(env))
    answer_stopinstances_with(env, previous)
    answer, outcome = control.stop(env.config, env.clock, SCHEDULE)
    assert answer["stopped"] is False
    assert answer["decision"] == "already_stopping"
    assert env.notifications() == []
    assert env.calls.of("PutParameter") == 0  # the ledger session is closed by the other stop
    assert "session_hours" not in outcome.extra


def test_ec2_stop_returns_the_previous_state(env: Env) -> None:
    assert ec2.stop(env.instance_id) == "running"
