"""The loop against the ComfyUI stand-in, with a fake clock: readiness, transitions, cadence, restarts."""

from __future__ import annotations

import itertools
from datetime import timedelta

from autostop_contract import iso, parse_time

from autostop_agent.sessions import Sessions
from tests.agent.helpers import BOOT, INSTANCE, ComfyStandIn, FakeClock, Rig, make_rig

CONTRACT_KEYS = {
    "v", "instance_id", "boot_at", "heartbeat_at", "comfyui_ready", "ready_at", "queue_running",
    "queue_pending", "gpu_utilization_pct", "sessions", "last_activity_at", "images_completed",
}  # fmt: skip


def test_readiness_is_written_within_5s_of_comfyui_first_answering(comfy: ComfyStandIn, rig: Rig) -> None:
    comfy.down = True
    up_at = 23.4  # fake seconds after the agent started

    def bring_up(elapsed: float) -> None:
        if elapsed >= up_at:
            comfy.down = False

    rig.run(60, on_tick=bring_up)
    records = rig.records()
    assert records[0]["comfyui_ready"] is False  # the agent reports itself alive before ComfyUI is up
    first_ready = next(w for w in rig.sink.writes if w.record["comfyui_ready"])
    assert comfy.first_answer_mono is not None
    delay = first_ready.mono - comfy.first_answer_mono
    assert 0 <= delay < 5
    assert first_ready.mono - rig.clock.monotonic() < 0  # it happened during the run, not at the end
    # the probe ran fast (1 s) while ComfyUI was coming up, so the delay is at most one fast interval
    assert delay <= 1.0
    assert first_ready.record["ready_at"] == first_ready.record["heartbeat_at"]
    assert set(CONTRACT_KEYS) <= set(first_ready.record)


def test_a_configured_boot_time_wins_over_the_kernel_one(comfy: ComfyStandIn, clock: FakeClock) -> None:
    rig = make_rig(comfy, clock, env={"BOOT_AT": "2026-11-23T09:30:00Z"})
    rig.run(1)
    assert rig.records()[-1]["boot_at"] == "2026-11-23T09:30:00Z"


def test_a_clean_stop_writes_a_last_record_that_is_not_ready(rig: Rig) -> None:
    rig.run(10)
    assert rig.records()[-1]["comfyui_ready"] is True
    last_activity = rig.records()[-1]["last_activity_at"]
    rig.agent.run(should_stop=lambda: True)  # SIGTERM before the next poll
    final = rig.records()[-1]
    assert final["comfyui_ready"] is False
    assert final["ready_at"] is None
    assert final["heartbeat_at"] == iso(rig.clock.now())
    assert final["last_activity_at"] == last_activity  # the stop rule's view is unchanged


def test_no_last_record_when_nothing_was_ever_written(rig: Rig) -> None:
    rig.agent.run(should_stop=lambda: True)
    assert rig.records() == []


def test_record_matches_the_contract(comfy: ComfyStandIn, rig: Rig) -> None:
    rig.run(1)
    record = rig.records()[-1]
    assert record["v"] == 2  # v2: with the install phase (contract-installing)
    assert record["instance_id"] == INSTANCE
    assert record["boot_at"] == iso(BOOT)
    assert record["comfyui_ready"] is True
    assert record["heartbeat_at"] == iso(rig.clock.now() - timedelta(seconds=5))  # the poll before the sleep
    assert record["heartbeat_at"].endswith("Z")
    assert (record["queue_running"], record["queue_pending"]) == (0, 0)
    assert record["gpu_utilization_pct"] == 0.0
    assert record["sessions"] == 0
    assert record["last_activity_at"] is None  # nothing busy seen yet
    assert record["images_completed"] == 0


def test_idle_to_busy_and_back_is_written_at_once(comfy: ComfyStandIn, rig: Rig, clock: FakeClock) -> None:
    rig.run(30)
    before = len(rig.sink.writes)
    comfy.busy()
    busy_from = clock.monotonic()
    rig.run(5)
    busy_write = rig.sink.writes[before]
    assert busy_write.mono == busy_from  # the very poll that saw the queue
    assert (busy_write.record["queue_running"], busy_write.record["queue_pending"]) == (1, 4)
    assert busy_write.record["last_activity_at"] == busy_write.record["heartbeat_at"]
    assert busy_write.record["activity"] == ["queue 1 running + 4 pending"]

    rig.run(40)  # stays busy: writes only on heartbeats
    last_busy = clock.now()
    comfy.idle()
    idle_from = clock.monotonic()
    n = len(rig.sink.writes)
    rig.run(5)
    idle_write = rig.sink.writes[n]
    assert idle_write.mono == idle_from
    assert idle_write.record["queue_running"] == idle_write.record["queue_pending"] == 0
    # last_activity_at is the last moment the queue was seen busy (the poll before)
    assert parse_time(idle_write.record["last_activity_at"]) == (last_busy - timedelta(seconds=5)).replace(
        microsecond=0
    )
    assert idle_write.record["activity"] == []


def test_gpu_cpu_and_sessions_count_as_activity(comfy: ComfyStandIn, rig: Rig) -> None:
    rig.run(10)
    n = len(rig.sink.writes)
    rig.gpu.value = 85.0
    rig.run(5)
    assert rig.records()[n]["activity"] == ["GPU 85% > 10%"]
    rig.gpu.value = 3.0
    rig.run(5)
    assert rig.records()[-1]["activity"] == []
    rig.host.cpu = 95.0
    rig.run(5)
    assert rig.records()[-1]["activity"] == ["CPU 95% > 30%"]
    rig.host.cpu = 1.0
    rig.run(5)
    rig.sessions[0] = Sessions(ssh=1, processes=1)
    rig.run(5)
    assert rig.records()[-1]["sessions"] == 2
    assert rig.records()[-1]["activity"] == ["sessions: ssh 1, processes 1"]
    # each busy/idle change was one immediate write, and nothing else was written
    assert [bool(r["activity"]) for r in rig.records()[n:]] == [True, False, True, False, True]


def test_heartbeat_cadence_without_changes(comfy: ComfyStandIn, rig: Rig) -> None:
    rig.run(600)
    monos = [w.mono - 1000.0 for w in rig.sink.writes]
    assert monos == [60.0 * i for i in range(10)]  # at start (ready), then exactly every HEARTBEAT_SECONDS
    # between heartbeats nothing is written although ComfyUI is polled every 5 s
    queue_polls = sum(1 for p in comfy.requests if p == "/queue")
    assert queue_polls >= 110


def test_heartbeat_interval_is_configurable(comfy: ComfyStandIn, clock: FakeClock) -> None:
    rig = make_rig(comfy, clock, {"HEARTBEAT_SECONDS": "20"})
    rig.run(200)
    monos = [w.mono for w in rig.sink.writes]
    assert [b - a for a, b in itertools.pairwise(monos)] == [20.0] * 9


def test_wall_clock_jump_changes_timestamps_not_cadence(
    comfy: ComfyStandIn, rig: Rig, clock: FakeClock
) -> None:
    rig.run(120)
    clock.wall_offset = timedelta(hours=3)  # NTP step forward
    rig.run(120)
    clock.wall_offset = timedelta(hours=-2)  # and backwards
    rig.run(120)
    monos = [w.mono for w in rig.sink.writes[1:]]
    assert all(b - a == 60 for a, b in itertools.pairwise(monos))
    assert rig.runner.calls == []  # a 3 h jump is not 3 h of idleness


def test_comfyui_going_down_is_written_at_once_after_three_failed_probes(
    comfy: ComfyStandIn, rig: Rig, clock: FakeClock
) -> None:
    rig.run(30)
    comfy.down = True
    down_from = clock.monotonic()
    n = len(rig.sink.writes)
    rig.run(20)
    down_write = rig.sink.writes[n]
    assert down_write.record["comfyui_ready"] is False
    assert down_write.record["ready_at"] is None
    assert down_write.mono - down_from == 10  # third failed probe at the 5 s cadence
    comfy.down = False
    n = len(rig.sink.writes)
    rig.run(5)
    assert rig.records()[n]["comfyui_ready"] is True


def test_one_failed_probe_keeps_readiness_and_last_queue(comfy: ComfyStandIn, rig: Rig) -> None:
    comfy.busy()
    rig.run(10)
    n = len(rig.sink.writes)
    comfy.down = True
    rig.run(5)
    comfy.down = False
    rig.run(30)
    assert len(rig.sink.writes) == n  # no flapping write for one dropped answer
    assert rig.agent.ready
    assert rig.agent.queue is not None
    assert rig.agent.queue.depth == 5


def test_last_activity_is_restored_from_this_boots_record(comfy: ComfyStandIn, clock: FakeClock) -> None:
    earlier = clock.now() - timedelta(minutes=4)
    rig = make_rig(comfy, clock)
    rig.sink.stored = (
        f'{{"v":1,"instance_id":"{INSTANCE}","boot_at":"{iso(BOOT)}","heartbeat_at":"{iso(earlier)}",'
        f'"last_activity_at":"{iso(earlier)}"}}'
    )
    rig.run(1)
    assert rig.records()[0]["last_activity_at"] == iso(earlier)


def test_a_record_of_an_earlier_boot_is_not_restored(comfy: ComfyStandIn, clock: FakeClock) -> None:
    earlier = clock.now() - timedelta(hours=5)
    rig = make_rig(comfy, clock)
    rig.sink.stored = (
        f'{{"v":1,"instance_id":"{INSTANCE}","boot_at":"{iso(BOOT - timedelta(hours=6))}",'
        f'"last_activity_at":"{iso(earlier)}"}}'
    )
    rig.run(1)
    assert rig.records()[0]["last_activity_at"] is None


def test_gpu_absent_is_null(comfy: ComfyStandIn, clock: FakeClock) -> None:
    from tests.agent.helpers import FakeGpu

    rig = make_rig(comfy, clock, gpu=FakeGpu(None))
    rig.run(1)
    assert rig.records()[0]["gpu_utilization_pct"] is None
