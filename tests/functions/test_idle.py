"""The stop rule as a pure function: every branch, both failure modes (left running, stopped under a job)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from autostop_contract import AgentRecord

from autostop.idle import Ec2Metrics, StopPolicy, decide, idle_since

LAUNCH = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
POLICY = StopPolicy(idle_minutes=10, boot_grace_minutes=5, stale_after_seconds=180)
IDLE_METRICS = Ec2Metrics(cpu_max_percent=1.0, network_out_max_bytes=10_000, datapoints=4)


def at(minutes: float) -> datetime:
    return LAUNCH + timedelta(minutes=minutes)


def record(now: datetime, **changes: object) -> AgentRecord:
    values: dict[str, object] = {
        "instance_id": "i-0abc",
        "boot_at": LAUNCH + timedelta(seconds=5),
        "heartbeat_at": now - timedelta(seconds=30),
        "comfyui_ready": True,
        "ready_at": at(1),
        "queue_running": 0,
        "queue_pending": 0,
        "gpu_utilization_pct": 0.0,
        "sessions": 0,
        "last_activity_at": at(2),
        "images_completed": 0,
    }
    values.update(changes)
    return AgentRecord(**values)  # type: ignore[arg-type]


def verdict(now: datetime, rec: AgentRecord | None, *, lease: datetime | None = None, **kw: object):
    return decide(
        now=now,
        state=str(kw.pop("state", "running")),
        launch_time=kw.pop("launch_time", LAUNCH),  # type: ignore[arg-type]
        lease_at=lease,
        record=rec,
        policy=kw.pop("policy", POLICY),  # type: ignore[arg-type]
        metrics=kw.pop("metrics", None),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("state", ["pending", "stopping", "stopped", "shutting-down", "terminated"])
def test_not_running_is_never_stopped(state: str) -> None:
    v = verdict(at(60), None, state=state, metrics=IDLE_METRICS)
    assert (v.stop, v.code) == (False, "not_running")


def test_boot_grace_keeps_even_a_long_idle_record() -> None:
    v = verdict(at(4.9), record(at(4.9), last_activity_at=None))
    assert (v.stop, v.code) == (False, "boot_grace")


def test_boot_grace_ends_at_the_configured_minute() -> None:
    v = verdict(
        at(5), record(at(5), last_activity_at=None), policy=StopPolicy(idle_minutes=5, boot_grace_minutes=5)
    )
    assert v.stop is True


def test_idle_exactly_the_limit_stops() -> None:
    v = verdict(at(12), record(at(12)))
    assert (v.stop, v.code, v.idle_minutes) == (True, "idle", 10.0)


def test_idle_just_under_the_limit_keeps() -> None:
    v = verdict(at(11.9), record(at(11.9)))
    assert (v.stop, v.code) == (False, "recent_activity")
    assert "last activity" in v.reason


@pytest.mark.parametrize(("running", "pending"), [(1, 0), (0, 1), (2, 7)])
def test_busy_queue_keeps_whatever_the_activity_time_says(running: int, pending: int) -> None:
    now = at(300)
    v = verdict(now, record(now, queue_running=running, queue_pending=pending, last_activity_at=at(1)))
    assert (v.stop, v.code) == (False, "queue_busy")


def test_open_session_keeps() -> None:
    now = at(300)
    v = verdict(now, record(now, sessions=1, last_activity_at=at(1)))
    assert (v.stop, v.code) == (False, "session_open")


def test_idle_since_is_the_latest_of_activity_lease_and_launch() -> None:
    rec = record(at(60), last_activity_at=at(20))
    assert idle_since(rec, at(30), LAUNCH) == at(30)
    assert idle_since(rec, at(10), LAUNCH) == at(20)
    assert idle_since(None, None, LAUNCH) == LAUNCH
    assert idle_since(None, None, None) is None


def test_a_lease_keeps_for_the_idle_window() -> None:
    v = verdict(at(40), record(at(40), last_activity_at=at(2)), lease=at(35))
    assert (v.stop, v.code) == (False, "recent_activity")
    assert "start request" in v.reason
    assert verdict(at(45), record(at(45)), lease=at(35)).stop is True


def test_activity_in_the_future_clock_skew_keeps() -> None:
    now = at(60)
    v = verdict(now, record(now, last_activity_at=at(70)))
    assert v.stop is False
    assert v.idle_minutes == 0.0


def test_stale_record_is_silent_and_uses_metrics() -> None:
    now = at(60)
    stale = record(now, heartbeat_at=now - timedelta(seconds=181))
    v = verdict(now, stale, metrics=IDLE_METRICS)
    assert (v.stop, v.code, v.agent_silent) == (True, "idle_by_metrics", True)


def test_stale_record_with_busy_queue_is_not_trusted_either_way() -> None:
    # A stale "busy" record must not keep the GPU forever: the metrics decide.
    now = at(60)
    stale = record(now, heartbeat_at=now - timedelta(minutes=30), queue_running=1)
    assert verdict(now, stale, metrics=IDLE_METRICS).stop is True


def test_record_from_an_earlier_boot_is_silent() -> None:
    now = at(60)
    old = record(now, boot_at=LAUNCH - timedelta(hours=1))
    v = verdict(now, old, metrics=None)
    assert (v.stop, v.code, v.agent_silent) == (False, "no_metrics", True)


def test_silent_agent_keeps_within_the_idle_window_after_launch() -> None:
    v = verdict(at(8), None, metrics=IDLE_METRICS)
    assert (v.stop, v.code, v.agent_silent) == (False, "recent_start", True)


def test_silent_agent_without_data_keeps() -> None:
    v = verdict(at(60), None, metrics=Ec2Metrics(None, None, 0))
    assert (v.stop, v.code) == (False, "no_metrics")


@pytest.mark.parametrize(
    ("metrics", "code"),
    [
        (Ec2Metrics(5.0, 0.0, 2), "cpu_busy"),
        (Ec2Metrics(99.0, 0.0, 2), "cpu_busy"),
        (Ec2Metrics(0.5, 1_000_000.0, 2), "network_busy"),
        (Ec2Metrics(None, 5_000_000.0, 1), "network_busy"),
    ],
)
def test_silent_agent_busy_metrics_keep(metrics: Ec2Metrics, code: str) -> None:
    v = verdict(at(60), None, metrics=metrics)
    assert (v.stop, v.code, v.agent_silent) == (False, code, True)


def test_metric_window_is_at_least_two_basic_periods() -> None:
    assert StopPolicy(idle_minutes=2).metric_window_minutes == 10
    assert StopPolicy(idle_minutes=30).metric_window_minutes == 30


def test_unknown_launch_time_falls_back_to_the_lease_and_metrics() -> None:
    v = verdict(at(60), None, launch_time=None, metrics=IDLE_METRICS)
    assert (v.stop, v.code) == (True, "idle_by_metrics")
    assert verdict(at(60), None, launch_time=None, lease=at(55), metrics=IDLE_METRICS).stop is False
