"""The last-line self-stop: the decision rules alone, then through the loop."""

from __future__ import annotations

import pytest

from autostop_agent.selfstop import GAP_SECONDS, RETRY_SECONDS, SelfStop
from autostop_agent.sessions import Sessions
from tests.agent.helpers import ComfyStandIn, FakeClock, FakeHost, make_rig


def _stopper(minutes: float = 20, checks: int = 3, grace: float = 5) -> SelfStop:
    return SelfStop(
        minutes=minutes, checks=checks, boot_grace_minutes=grace, command=["shutdown", "-h", "now"]
    )


def _feed(
    stop: SelfStop, start: float, seconds: float, *, step: float = 5, uptime0: float = 3600, **kw: object
):
    decision = None
    t = start
    while t <= start + seconds:
        decision = stop.decide(mono=t, uptime=uptime0 + t - start, **{"busy": False, "sessions": 0, **kw})  # type: ignore[arg-type]
        t += step
    return decision, t


def test_stops_only_after_the_limit_of_idle_time() -> None:
    stop = _stopper(minutes=20)
    decision, _ = _feed(stop, 0, 20 * 60 - 5)
    assert decision is not None
    assert not decision.stop
    assert decision.reason.startswith("idle 19.9 of 20")
    decision = stop.decide(mono=20 * 60, uptime=4800, busy=False, sessions=0)
    assert decision.stop
    assert decision.reason == "idle for 20.0 minutes (limit 20)"


def test_never_within_boot_grace() -> None:
    stop = _stopper(minutes=1, grace=30)
    decision, _ = _feed(stop, 0, 29 * 60, uptime0=0)
    assert decision is not None
    assert not decision.stop
    assert decision.reason == "boot grace"
    assert stop.decide(mono=30 * 60 + 1, uptime=30 * 60 + 1, busy=False, sessions=0).stop


def test_needs_consecutive_idle_checks() -> None:
    stop = _stopper(minutes=20, checks=3)
    # a long gap (agent stalled) restarts the idle time; after the restart it needs fresh idle checks too
    stop.decide(mono=0, uptime=3600, busy=False, sessions=0)
    d = stop.decide(mono=GAP_SECONDS + 1, uptime=3600, busy=False, sessions=0)
    assert not d.stop
    assert stop.consecutive == 1
    stop2 = _stopper(minutes=0.05, checks=3)  # 3 s limit: the check count is what holds it back
    assert not stop2.decide(mono=0, uptime=3600, busy=False, sessions=0).stop
    d1 = stop2.decide(mono=5, uptime=3605, busy=False, sessions=0)
    assert not d1.stop
    assert d1.reason == "idle check 2 of 3"
    assert stop2.decide(mono=10, uptime=3610, busy=False, sessions=0).stop


@pytest.mark.parametrize(("busy", "sessions"), [(True, 0), (False, 1), (True, 2)])
def test_never_while_busy_or_with_a_session(busy: bool, sessions: int) -> None:
    stop = _stopper(minutes=20)
    _feed(stop, 0, 19 * 60)
    decision, t = _feed(stop, 19 * 60 + 5, 60 * 60, busy=busy, sessions=sessions)
    assert decision is not None
    assert not decision.stop
    # and the idle time starts again from the last busy reading
    decision, _ = _feed(stop, t, 19 * 60)
    assert decision is not None
    assert not decision.stop


def test_does_not_fire_again_while_the_shutdown_is_pending() -> None:
    calls: list[tuple[str, ...]] = []
    stop = SelfStop(
        minutes=1,
        checks=1,
        boot_grace_minutes=0,
        command=["poweroff"],
        runner=lambda c: calls.append(tuple(c)) or 0,
    )
    _feed(stop, 0, 55)
    d = stop.decide(mono=60, uptime=60, busy=False, sessions=0)
    assert d.stop
    stop.fire(60, d)
    decision, _ = _feed(stop, 65, RETRY_SECONDS - 10)
    assert decision is not None
    assert not decision.stop
    assert decision.reason == "shutdown already requested"
    assert stop.decide(mono=60 + RETRY_SECONDS, uptime=400, busy=False, sessions=0).stop  # command failed?
    assert calls == [("poweroff",)]


def test_disabled_never_stops() -> None:
    stop = _stopper(minutes=0)
    decision, _ = _feed(stop, 0, 24 * 3600, step=60)
    assert decision is not None
    assert not decision.stop
    assert decision.reason == "self-stop disabled"


def test_loop_runs_the_shutdown_command_after_idle_minutes_plus_10(
    comfy: ComfyStandIn, clock: FakeClock
) -> None:
    rig = make_rig(comfy, clock, {"IDLE_MINUTES": "10"}, host=FakeHost(clock, uptime_at_start=40))
    rig.run(20 * 60 - 5)
    assert rig.runner.calls == []
    rig.run(30)
    assert len(rig.runner.calls) == 1
    at, command = rig.runner.calls[0]
    assert command == ("shutdown", "-h", "now")
    assert at - 1000.0 == 20 * 60  # idle since the agent's start: exactly SELF_STOP_MINUTES later


def test_loop_uses_the_configured_command_and_limit(comfy: ComfyStandIn, clock: FakeClock) -> None:
    rig = make_rig(comfy, clock, {"SELF_STOP_MINUTES": "12", "SHUTDOWN_COMMAND": "/sbin/poweroff --no-wall"})
    rig.run(13 * 60)
    assert [c for _, c in rig.runner.calls] == [("/sbin/poweroff", "--no-wall")]
    assert rig.runner.calls[0][0] - 1000.0 == 12 * 60


def test_loop_never_stops_under_a_queue_or_session(comfy: ComfyStandIn, clock: FakeClock) -> None:
    rig = make_rig(comfy, clock)
    comfy.busy()
    rig.run(40 * 60)
    comfy.idle()
    rig.sessions[0] = Sessions(ssm=1)
    rig.run(40 * 60)
    assert rig.runner.calls == []
    rig.sessions[0] = Sessions()
    rig.run(19 * 60)
    assert rig.runner.calls == []  # idle time counts from the session's end
    rig.run(2 * 60)
    assert len(rig.runner.calls) == 1


def test_loop_respects_boot_grace_after_an_early_start(comfy: ComfyStandIn, clock: FakeClock) -> None:
    rig = make_rig(
        comfy, clock, {"IDLE_MINUTES": "1", "SELF_STOP_MINUTES": "1", "BOOT_GRACE_MINUTES": "10"},
        host=FakeHost(clock, uptime_at_start=0),
    )  # fmt: skip
    rig.run(10 * 60 - 5)
    assert rig.runner.calls == []
    rig.run(10)
    assert len(rig.runner.calls) == 1
