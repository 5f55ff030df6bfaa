"""stop: verifies idleness itself, falls back to EC2 metrics, notifies with the session cost."""

from __future__ import annotations

from datetime import timedelta

import pytest

from autostop import control
from autostop.events import StopTrigger, parse_stop

from .conftest import LAUNCH, Env, iso

SCHEDULE = StopTrigger("schedule")


def stop(env: Env, trigger: StopTrigger = SCHEDULE) -> dict:
    answer, _ = control.stop(env.config, env.clock, trigger)
    return answer


def idle_record(env: Env, minutes: float, **fields: object) -> None:
    env.write_record(last_activity_at=iso(env.clock.now() - timedelta(minutes=minutes)), **fields)


def assert_kept(env: Env, answer: dict, decision: str) -> None:
    assert answer["stopped"] is False, answer
    assert answer["decision"] == decision, answer
    assert env.state() == "running"
    assert env.calls.of("StopInstances") == 0
    assert env.notifications() == []


def test_keeps_within_boot_grace(env: Env) -> None:
    env.clock.set(LAUNCH + timedelta(minutes=4))
    answer = stop(env)
    assert_kept(env, answer, "boot_grace")


def test_boot_grace_uses_the_real_launch_time_of_this_boot(env: Env) -> None:
    # moto keeps the first LaunchTime across stop/start; real EC2 updates it.
    env.set_launch_time(env.clock.now() - timedelta(minutes=1))
    idle_record(env, 60)
    assert_kept(env, stop(env), "boot_grace")


def test_keeps_while_the_queue_is_busy(env: Env) -> None:
    idle_record(env, 30, queue_running=1, queue_pending=0)
    assert_kept(env, stop(env), "queue_busy")


def test_keeps_while_jobs_are_pending(env: Env) -> None:
    idle_record(env, 30, queue_running=0, queue_pending=2)
    assert_kept(env, stop(env), "queue_busy")


def test_keeps_while_a_session_is_open(env: Env) -> None:
    idle_record(env, 30, sessions=1)
    assert_kept(env, stop(env), "session_open")


def test_keeps_within_the_lease(env: Env) -> None:
    idle_record(env, 30)
    env.write_lease(env.clock.now() - timedelta(minutes=3))
    answer = stop(env)
    assert_kept(env, answer, "recent_activity")
    assert "start request" in answer["reason"]
    assert answer["idle_minutes"] == 3.0


def test_keeps_after_recent_activity(env: Env) -> None:
    idle_record(env, 9.5)
    answer = stop(env)
    assert_kept(env, answer, "recent_activity")
    assert answer["idle_minutes"] == 9.5


def test_stops_when_idle_long_enough_and_notifies_with_cost(env: Env) -> None:
    idle_record(env, 10)
    answer = stop(env)
    assert answer["stopped"] is True
    assert answer["decision"] == "idle"
    assert answer["idle_minutes"] == 10.0
    assert answer["agent_silent"] is False
    assert env.state() == "stopped"
    # 30 minutes of g4dn.xlarge in us-east-1 at $0.526/h
    assert answer["session_cost_usd"] == pytest.approx(0.26)
    [note] = env.notifications()
    assert note["Subject"] == f"gpu-autostop: {env.instance_id} stopped after 10 idle minutes"
    assert "idle for 10.0 minutes" in note["Message"]
    assert "Estimated session cost: $0.26" in note["Message"]
    assert "0.50 hours" in note["Message"]


def test_price_override_is_used_for_the_cost(env: Env) -> None:
    env.with_config(hourly_price_usd=2.0)
    idle_record(env, 15)
    assert stop(env)["session_cost_usd"] == pytest.approx(1.0)


def test_fractional_idle_minutes(env: Env) -> None:
    env.with_config(idle_minutes=0.5, boot_grace_minutes=0)
    idle_record(env, 0.4)
    assert_kept(env, stop(env), "recent_activity")
    env.clock.advance(seconds=6)
    env.write_record(last_activity_at=iso(env.clock.now() - timedelta(seconds=30)))
    assert stop(env)["stopped"] is True


def test_agent_silent_and_busy_cpu_keeps_and_says_so(env: Env) -> None:
    env.write_record(heartbeat_at=iso(env.clock.now() - timedelta(minutes=10)))  # stale
    env.put_ec2_metric("CPUUtilization", 80.0, minutes_ago=3)
    env.put_ec2_metric("NetworkOut", 1000.0, minutes_ago=3)
    answer = stop(env)
    assert_kept(env, answer, "cpu_busy")
    assert answer["agent_silent"] is True
    assert "agent silent" in answer["reason"]
    assert env.calls.of("GetMetricStatistics") == 2


def test_agent_missing_and_busy_network_keeps(env: Env) -> None:
    env.put_ec2_metric("CPUUtilization", 1.0, minutes_ago=3)
    env.put_ec2_metric("NetworkOut", 50_000_000.0, minutes_ago=3)
    answer = stop(env)
    assert_kept(env, answer, "network_busy")
    assert answer["agent_silent"] is True


def test_agent_silent_and_idle_metrics_stops_and_the_email_says_agent_silent(env: Env) -> None:
    env.put_ec2_metric("CPUUtilization", 1.5, minutes_ago=8)
    env.put_ec2_metric("CPUUtilization", 0.7, minutes_ago=3)
    env.put_ec2_metric("NetworkOut", 20_000.0, minutes_ago=3)
    answer = stop(env)
    assert answer["stopped"] is True
    assert answer["decision"] == "idle_by_metrics"
    assert answer["agent_silent"] is True
    [note] = env.notifications()
    assert "agent is silent" in note["Message"]
    assert "journalctl -u gpu-autostop-agent" in note["Message"]


def test_agent_silent_without_metric_data_keeps_for_the_next_check(env: Env) -> None:
    answer = stop(env)
    assert_kept(env, answer, "no_metrics")
    assert answer["agent_silent"] is True


def test_agent_silent_within_the_idle_window_does_not_query_metrics(env: Env) -> None:
    env.write_lease(env.clock.now() - timedelta(minutes=2))
    assert_kept(env, stop(env), "recent_start")
    assert env.calls.of("GetMetricStatistics") == 0


def test_record_from_an_earlier_boot_counts_as_silent(env: Env) -> None:
    env.write_record(boot_at=iso(LAUNCH - timedelta(hours=2)), queue_running=0)
    answer = stop(env)
    assert answer["agent_silent"] is True


def test_forced_stop_stops_a_busy_instance(env: Env) -> None:
    idle_record(env, 0, queue_running=3)
    answer = stop(env, parse_stop({"force": True, "reason": "runaway bill"}))
    assert answer["stopped"] is True
    assert answer["decision"] == "forced"
    assert env.state() == "stopped"
    [note] = env.notifications()
    assert "emergency stop" in note["Subject"]
    assert "runaway bill" in note["Message"]


def test_forced_stop_of_a_stopped_instance_does_nothing(env: Env) -> None:
    env.set_state("stopped")
    answer = stop(env, parse_stop({"force": True}))
    assert answer["stopped"] is False
    assert answer["decision"] == "not_running"
    assert env.calls.mutating_ec2 == []


@pytest.mark.parametrize("state", ["stopped", "stopping", "pending", "terminated"])
def test_nothing_happens_unless_running(env: Env, state: str) -> None:
    env.set_state(state)
    idle_record(env, 120)
    answer = stop(env)
    assert answer["stopped"] is False
    assert answer["decision"] == "not_running"
    assert env.calls.mutating_ec2 == []
    assert env.notifications() == []


def test_a_start_request_during_the_decision_wins(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from autostop import records

    idle_record(env, 30)
    real = records.read_lease_reading
    seen: list[int] = []

    def lease_renewed_between_reads(parameter: str, now: object = None):
        seen.append(1)
        if len(seen) == 2:
            env.write_lease(env.clock.now())
        return real(parameter, now)  # type: ignore[arg-type]

    monkeypatch.setattr(records, "read_lease_reading", lease_renewed_between_reads)
    answer = stop(env)
    assert_kept(env, answer, "lease_renewed")


def test_no_topic_means_no_notification_but_still_stops(env: Env) -> None:
    env.with_config(alert_topic_arn=None)
    idle_record(env, 20)
    assert stop(env)["stopped"] is True
    assert env.calls.of("Publish") == 0


def test_the_subject_shows_fractional_idle_minutes(env: Env) -> None:
    env.with_config(idle_minutes=0.25, boot_grace_minutes=0)
    idle_record(env, 0.3)
    assert stop(env)["stopped"] is True
    [note] = env.notifications()
    assert note["Subject"].endswith("stopped after 0.3 idle minutes")
