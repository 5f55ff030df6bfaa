"""The record the agent writes, read by the control plane's own parser and stop rule."""

from __future__ import annotations

import json
from datetime import timedelta

from autostop.idle import StopPolicy, decide
from autostop.records import parse_agent_record
from tests.agent.helpers import BOOT, INSTANCE, ComfyStandIn, FakeClock, Rig


def test_the_lambda_reads_what_the_agent_writes(comfy: ComfyStandIn, rig: Rig, clock: FakeClock) -> None:
    launch = BOOT - timedelta(seconds=25)  # EC2 LaunchTime comes shortly before the kernel boots
    comfy.busy()
    rig.run(30)
    comfy.idle()
    rig.run(60)
    record = parse_agent_record(rig.sink.stored, INSTANCE)
    assert record is not None
    assert record.comfyui_ready
    assert record.is_current(clock.now(), 180, launch)  # fresh, and of this boot
    assert record.boot_at == BOOT
    assert record.queue_depth == 0
    assert record.last_activity_at is not None
    assert record.gpu_utilization_pct == 0.0
    stored = json.loads(rig.sink.stored or "")
    assert stored["last_activity_at"].endswith("Z")

    policy = StopPolicy(idle_minutes=10, boot_grace_minutes=1)
    now = clock.now()
    keep = decide(now=now, state="running", launch_time=launch, lease_at=None, record=record, policy=policy)
    assert not keep.stop
    assert keep.code == "recent_activity"  # idle since the agent's last_activity_at, not since launch
    later = record.last_activity_at + timedelta(minutes=10)
    stop = decide(now=later, state="running", launch_time=launch, lease_at=None, record=record, policy=policy)
    assert stop.agent_silent  # that record is 10 minutes old by then: stale, not trusted
    assert not stop.stop
    # with the agent still writing, the verdict is "idle" once IDLE_MINUTES have passed
    rig.run(10 * 60)
    fresh = parse_agent_record(rig.sink.stored, INSTANCE)
    assert fresh is not None
    verdict = decide(
        now=clock.now(), state="running", launch_time=launch, lease_at=None, record=fresh, policy=policy
    )
    assert verdict.stop
    assert verdict.code == "idle"
    assert not verdict.agent_silent


def test_a_session_blocks_the_lambdas_stop(comfy: ComfyStandIn, rig: Rig, clock: FakeClock) -> None:
    from autostop_agent.sessions import Sessions

    rig.sessions[0] = Sessions(ssh=1)
    rig.run(20 * 60)
    record = parse_agent_record(rig.sink.stored, INSTANCE)
    assert record is not None
    assert record.sessions == 1
    verdict = decide(
        now=clock.now(),
        state="running",
        launch_time=BOOT,
        lease_at=None,
        record=record,
        policy=StopPolicy(),
    )
    assert not verdict.stop
    assert verdict.code == "session_open"
    assert rig.runner.calls == []
