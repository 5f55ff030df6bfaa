"""Work ComfyUI finished between two polls, read from GET /history (issue 13: short jobs were missed).

A real ComfyUI 0.3.64 (no /api/jobs) ran a prompt in 0.13 s; polling /queue every 5 s never saw it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from autostop_contract import iso
from hypothesis import given, settings
from hypothesis import strategies as st

from autostop_agent.comfyui import (
    MAX_HISTORY_ITEMS,
    ComfyClient,
    ComfyError,
    Finished,
    finished_prompts,
)
from autostop_agent.history import CompletedWork
from tests.agent.helpers import ComfyStandIn, FakeClock, Rig, fixture_bytes, history_entry, make_rig
from tests.agent.test_agent_json import json_values

FAST = settings(max_examples=150, derandomize=True, deadline=None, database=None)


def ms(moment: datetime) -> datetime:
    """The time as ComfyUI records it (whole milliseconds)."""
    return datetime.fromtimestamp(int(moment.timestamp() * 1000) / 1000, UTC)


def test_the_recorded_history_is_read_oldest_first(comfy: ComfyStandIn) -> None:
    comfy.set_json("/history", fixture_bytes("history.json"))
    entries = ComfyClient(comfy.url, 0.5).history()
    assert [e.prompt_id[:8] for e in entries] == ["d679c91a", "e80eed7c", "9e336449", "742552c1", "3313917d"]
    assert [e.success for e in entries] == [True, True, False, False, True]  # error, interrupted
    # the latest status message: execution_success / _error / _interrupted
    assert entries[3].ended_at == datetime.fromtimestamp(1795377271.967, UTC)
    assert entries[4].ended_at == datetime.fromtimestamp(1795377276.731, UTC)
    assert comfy.requests[-1] == f"/history?max_items={MAX_HISTORY_ITEMS}"  # a bounded read


@pytest.mark.parametrize(
    "name", ["history_prompt_id.json", "history_runtime_error.json", "history_interrupted.json"]
)
def test_each_recorded_outcome_is_one_finished_prompt(name: str) -> None:
    (entry,) = finished_prompts(json.loads(fixture_bytes(name)))
    assert entry.success is (name == "history_prompt_id.json")
    assert entry.ended_at is not None


def test_a_prompt_shorter_than_the_poll_is_activity_and_counted(
    comfy: ComfyStandIn, rig: Rig, clock: FakeClock
) -> None:
    rig.run(30)
    assert rig.agent.busy is False
    writes = len(rig.sink.writes)
    ran = clock.now() + timedelta(seconds=1)
    comfy.history(("short-1", ran + timedelta(seconds=0.13), True))  # the queue never shows it
    rig.run(5)
    busy = rig.records()[writes]  # written at once, not at the next heartbeat
    assert busy["activity"] == ["1 prompt(s) finished since the last poll"]
    assert busy["images_completed"] == 1
    assert busy["last_activity_at"] == busy["heartbeat_at"]
    rig.run(5)
    assert rig.agent.busy is False  # the same history again is not new work
    assert rig.agent.images_completed() == 1
    assert rig.records()[-1]["activity"] == []


def test_failed_prompts_are_activity_but_not_images(comfy: ComfyStandIn, rig: Rig, clock: FakeClock) -> None:
    rig.run(10)
    comfy.history(("bad-1", clock.now(), False), ("ok-1", clock.now(), True), ("bad-2", clock.now(), False))
    rig.run(5)
    assert rig.records()[-1]["activity"] == ["3 prompt(s) finished since the last poll"]
    assert rig.agent.images_completed() == 1


def test_a_comfyui_restart_neither_loses_nor_double_counts(
    comfy: ComfyStandIn, rig: Rig, clock: FakeClock
) -> None:
    rig.run(10)
    at = clock.now()
    first = [(f"a{i}", at, True) for i in range(3)]
    comfy.history(*first)
    rig.run(10)
    assert rig.agent.images_completed() == 3
    comfy.down = True  # ComfyUI restarts: not ready, then an empty history
    rig.run(20)
    assert rig.agent.ready is False
    assert rig.agent.busy is False  # the last "finished" reading is not repeated while it is down
    comfy.down = False
    comfy.history()
    rig.run(10)
    assert rig.agent.images_completed() == 3
    comfy.history(("b0", at + timedelta(seconds=40), True))
    rig.run(10)
    assert rig.agent.images_completed() == 4
    comfy.history(*first, ("b0", at + timedelta(seconds=40), True))  # even if the old prompts came back
    rig.run(10)
    assert rig.agent.images_completed() == 4


def test_after_an_agent_restart_the_history_gives_last_activity_not_new_work(
    comfy: ComfyStandIn, clock: FakeClock
) -> None:
    """The first read has nothing to compare with: what it finds is counted and dated by ComfyUI's
    timestamps, but is not 'finished since the last poll'."""
    earlier = clock.now() - timedelta(minutes=3)
    comfy.history(("old-1", earlier - timedelta(minutes=1), True), ("old-2", earlier, True))
    rig = make_rig(comfy, clock)
    rig.run(5)
    record = rig.records()[-1]
    assert record["activity"] == []
    assert record["last_activity_at"] == iso(earlier)
    assert record["images_completed"] == 2


def test_a_timestamp_in_the_future_is_read_as_now(comfy: ComfyStandIn, rig: Rig, clock: FakeClock) -> None:
    comfy.history(("future", clock.now() + timedelta(days=30), True))
    rig.agent.step()
    assert rig.agent.last_activity_at == clock.now()


def test_an_older_comfyui_without_timestamps_still_counts(
    comfy: ComfyStandIn, rig: Rig, clock: FakeClock
) -> None:
    rig.run(10)
    comfy.history(("no-times", None, True))
    comfy.set_json(  # and one from before the status field
        "/history", json.dumps(json.loads(comfy.routes["/history"][2]) | {"old": {"outputs": {}}})
    )
    rig.run(5)
    assert rig.agent.images_completed() == 2
    assert rig.records()[-1]["activity"] == ["2 prompt(s) finished since the last poll"]
    assert rig.agent.last_activity_at == clock.now() - timedelta(seconds=5)  # that poll's time


@pytest.mark.parametrize(
    "body",
    [
        b"<html>500</html>",
        b"[]",
        b'{"x": 1, "y": [], "z": "s"}',
        b'{"p": {"status": {"completed": 1, "messages": [["execution_start", {"timestamp": 1e12}]]}}}',
        b'{"p": {"status": {"completed": true, "messages": {}}}, "q": {"outputs": []}, "r": {}}',
        b'{"p": {"status": {"completed": "yes", "messages": [[1, 2], null, ["e", {"timestamp": 1e300}]]}}}',
        b"[" * 50_000 + b"]" * 50_000,
    ],
    ids=["html", "list", "wrong-types", "int-completed", "dict-messages", "garbage-status", "deep"],
)
def test_a_bad_history_changes_neither_readiness_nor_count(
    comfy: ComfyStandIn, rig: Rig, clock: FakeClock, body: bytes
) -> None:
    rig.run(10)
    comfy.set_json("/history", body)
    rig.run(30)
    assert rig.agent.ready is True
    assert rig.agent.images_completed() == 0
    assert rig.agent.last_activity_at is None
    assert rig.agent.busy is False


def test_a_history_answer_is_bounded(comfy: ComfyStandIn) -> None:
    comfy.set_json("/history", b'{"a": {"status": {}}, "pad": "' + b"x" * (9 * 1024 * 1024) + b'"}')
    with pytest.raises(ComfyError, match="exceeds"):
        ComfyClient(comfy.url, 2.0).history()


def test_more_prompts_than_the_window_warn(caplog: pytest.LogCaptureFixture) -> None:
    now = datetime(2026, 11, 22, 9, tzinfo=UTC)
    work = CompletedWork(window=3)
    work.update([], now)
    burst = [Finished(f"p{i}", True, now) for i in range(3)]
    with caplog.at_level(logging.WARNING):
        found = work.update(burst, now)
    assert found.finished == 3
    assert "may be low" in caplog.text


def test_prompts_deleted_from_the_history_do_not_bring_old_ones_back_as_new() -> None:
    now = datetime(2026, 11, 22, 9, tzinfo=UTC)
    work = CompletedWork(window=2)
    entries = [Finished(f"p{i}", True, now - timedelta(seconds=10 - i)) for i in range(4)]
    work.update(entries[0:2], now)
    work.update(entries[1:3], now)
    work.update(entries[2:4], now)
    assert work.completed == 4
    found = work.update(entries[0:2], now)  # p2, p3 deleted: the window shows p0, p1 again
    assert (found.finished, work.completed) == (0, 4)


@FAST
@given(json_values | st.dictionaries(st.text(max_size=4), json_values, max_size=5))
def test_finished_prompts_is_valid_or_comfy_error(data: Any) -> None:
    with contextlib.suppress(ComfyError):
        for entry in finished_prompts(data):
            assert isinstance(entry.prompt_id, str)
            assert entry.ended_at is None or entry.ended_at.tzinfo is not None


snapshots = st.lists(
    st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 3), st.booleans()), max_size=6),
    min_size=1,
    max_size=8,
)


@FAST
@given(snapshots)
def test_each_finished_prompt_is_counted_once_whatever_the_reads(
    reads: list[list[tuple[str, int, bool]]],
) -> None:
    """Any sequence of history reads (restarts, deletions, repeats): every distinct successful
    prompt is counted exactly once, and the count never goes down."""
    now = datetime(2026, 11, 22, 9, tzinfo=UTC)
    work = CompletedWork(window=8)
    successes: dict[tuple[str, int], bool] = {}
    last = 0
    for read in reads:
        entries = [Finished(pid, ok, now - timedelta(seconds=t)) for pid, t, ok in read]
        for pid, t, ok in read:
            successes.setdefault((pid, t), ok)
        found = work.update(entries, now)
        assert found.latest is None or found.latest <= now
        assert work.completed >= last
        last = work.completed
    assert work.completed == sum(successes.values())


def test_history_entries_for_tests_have_the_recorded_shape() -> None:
    prompt_id, entry = history_entry("x", datetime(2026, 11, 22, 9, tzinfo=UTC), True)
    recorded = next(iter(json.loads(fixture_bytes("history_prompt_id.json")).values()))
    assert set(entry) == set(recorded)
    assert finished_prompts({prompt_id: entry})[0].ended_at == ms(datetime(2026, 11, 22, 9, tzinfo=UTC))
