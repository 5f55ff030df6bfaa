"""start: idempotent for every EC2 state, waits, capacity fallback, lease."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from autostop_contract import parse_time

from autostop import control
from autostop.errors import RequestError
from autostop.events import StartRequest, parse_start

from .conftest import LAUNCH, Env, iso


def start(env: Env, **event: object) -> dict:
    answer, _ = control.start(env.config, env.clock, parse_start(event), request_id="req-1")
    return answer


def test_start_from_stopped_starts_and_records_lease(env: Env) -> None:
    env.set_state("stopped")
    answer = start(env)
    assert answer["ok"] is True
    assert answer["started"] is True
    assert answer["state"] == "running"
    assert answer["instance_type"] == "g4dn.xlarge"
    assert env.calls.of("StartInstances") == 1
    assert env.state() == "running"
    lease = env.lease()
    assert lease is not None
    assert parse_time(lease["requested_at"]) == env.clock.now()
    assert lease["request_id"] == "req-1"


def test_start_when_pending_does_nothing(env: Env) -> None:
    env.set_state("pending")
    answer = start(env)
    assert answer["started"] is False
    assert answer["state"] == "pending"
    assert answer["ready"] is False
    assert env.calls.mutating_ec2 == []
    assert env.lease() is not None


def test_start_when_running_does_nothing_but_renews_lease(env: Env) -> None:
    env.write_lease(LAUNCH)
    answer = start(env)
    assert answer["started"] is False
    assert answer["state"] == "running"
    assert answer["comfyui_url"] == f"http://{answer['public_ip']}:8188"
    assert env.calls.mutating_ec2 == []
    assert env.lease()["requested_at"] == iso(env.clock.now())


def test_start_when_stopping_waits_for_stopped_then_starts(env: Env) -> None:
    env.set_state("stopping")

    def finish_stopping(clock: object) -> None:
        if len(env.clock.slept) == 3:
            env.set_state("stopped")

    env.clock.on_sleep.append(finish_stopping)
    answer = start(env)
    assert answer["started"] is True
    assert answer["state"] == "running"
    assert len(env.clock.slept) == 3
    assert env.calls.names.index("StartInstances") > env.calls.names.index("DescribeInstances")


def test_start_when_stopping_too_long_answers_retry_after(env: Env) -> None:
    env.set_state("stopping")
    answer, _ = _run_catching(env, StartRequest())
    assert answer["ok"] is False
    assert answer["error"]["code"] == "InstanceStopping"
    assert answer["retry_after_s"] == control.RETRY_AFTER_STOPPING_S
    assert sum(env.clock.slept) == pytest.approx(control.STOPPING_WAIT_LIMIT_S)
    assert env.calls.mutating_ec2 == []


@pytest.mark.parametrize("state", ["shutting-down", "terminated"])
def test_start_on_a_gone_instance_is_instance_gone_without_mutation(env: Env, state: str) -> None:
    env.set_state(state)
    answer, _ = _run_catching(env, StartRequest())
    assert answer["ok"] is False
    assert answer["error"]["code"] == "InstanceGone"
    assert env.calls.mutating_ec2 == []
    assert env.calls.of("PutParameter") == 0  # nothing changed, not even the lease


def _run_catching(env: Env, request: StartRequest) -> tuple[dict, None]:
    try:
        answer, _ = control.start(env.config, env.clock, request)
    except RequestError as exc:
        return exc.answer(), None
    return answer, None


def test_wait_running_polls_until_running(env: Env) -> None:
    env.set_state("pending")
    env.clock.on_sleep.append(lambda c: env.set_state("running") if len(env.clock.slept) == 2 else None)
    answer = start(env, wait="running", timeout_s=60)
    assert answer["state"] == "running"
    assert answer["timed_out"] is False
    assert answer["waited_s"] == pytest.approx(2 * control.POLL_SECONDS)


def test_wait_running_times_out_with_retry_after(env: Env) -> None:
    env.set_state("pending")
    answer = start(env, wait="running", timeout_s=20)
    assert answer["ok"] is True
    assert answer["state"] == "pending"
    assert answer["timed_out"] is True
    assert answer["retry_after_s"] == control.RETRY_AFTER_WAIT_S
    assert sum(env.clock.slept) == pytest.approx(20)


def test_wait_ready_returns_when_agent_record_says_ready(env: Env) -> None:
    env.set_state("stopped")
    env.clock.set(LAUNCH)
    env.write_record(comfyui_ready=False, heartbeat_at=iso(LAUNCH))

    def agent_comes_up(clock: object) -> None:
        if len(env.clock.slept) == 6:  # 30 s after the start
            env.write_record(ready_at=iso(env.clock.now()))

    env.clock.on_sleep.append(agent_comes_up)
    answer, outcome = control.start(env.config, env.clock, StartRequest(wait="ready", timeout_s=300))
    assert answer["ready"] is True
    assert answer["timed_out"] is False
    assert outcome.ready_wait_s == pytest.approx(30)


def test_wait_ready_times_out_when_comfyui_never_answers(env: Env) -> None:
    env.write_record(comfyui_ready=False)
    env.clock.on_sleep.append(lambda c: env.write_record(comfyui_ready=False))
    answer = start(env, wait="ready", timeout_s=45)
    assert answer["ready"] is False
    assert answer["timed_out"] is True
    assert answer["retry_after_s"] == control.RETRY_AFTER_WAIT_S
    assert sum(env.clock.slept) == pytest.approx(45)


def test_wait_ready_ignores_a_record_from_an_earlier_boot(env: Env) -> None:
    env.write_record(boot_at=iso(LAUNCH - timedelta(hours=3)), ready_at=iso(LAUNCH - timedelta(hours=3)))
    answer = start(env, wait="ready", timeout_s=10)
    assert answer["ready"] is False
    assert answer["timed_out"] is True


def test_capacity_shortage_falls_back_in_order(env: Env) -> None:
    env.set_state("stopped")
    env.with_config(fallback_instance_types=("g5.xlarge", "g6.xlarge"))
    env.capacity_short = {"g4dn.xlarge", "g5.xlarge"}
    answer, outcome = control.start(env.config, env.clock, StartRequest())
    assert answer["started"] is True
    assert answer["instance_type"] == "g6.xlarge"
    assert env.describe()["InstanceType"] == "g6.xlarge"
    assert outcome.extra["capacity_short"] == ["g4dn.xlarge", "g5.xlarge"]
    assert env.calls.mutating_ec2 == [
        "StartInstances",
        "ModifyInstanceAttribute",
        "StartInstances",
        "ModifyInstanceAttribute",
        "StartInstances",
    ]


def test_no_capacity_anywhere_answers_no_capacity_and_restores_declared_type(env: Env) -> None:
    env.set_state("stopped")
    env.with_config(fallback_instance_types=("g5.xlarge",))
    env.capacity_short = {"g4dn.xlarge", "g5.xlarge"}
    answer, _ = _run_catching(env, StartRequest())
    assert answer["ok"] is False
    assert answer["error"]["code"] == "NoCapacity"
    assert answer["retry_after_s"] == control.RETRY_AFTER_NO_CAPACITY_S
    assert answer["tried_instance_types"] == ["g4dn.xlarge", "g5.xlarge"]
    assert env.state() == "stopped"
    assert env.describe()["InstanceType"] == "g4dn.xlarge"


def test_next_start_returns_to_the_declared_type(env: Env) -> None:
    env.set_state("stopped")
    env.with_config(fallback_instance_types=("g5.xlarge",))
    env.capacity_short = {"g4dn.xlarge"}
    assert start(env)["instance_type"] == "g5.xlarge"
    env.set_state("stopped")
    env.capacity_short = set()
    assert start(env)["instance_type"] == "g4dn.xlarge"
    assert env.describe()["InstanceType"] == "g4dn.xlarge"


def test_duplicate_start_requests_start_once(env: Env) -> None:
    env.set_state("stopped")
    first = start(env)
    second = start(env)
    assert first["started"] is True
    assert second["started"] is False
    assert env.calls.of("StartInstances") == 1
    assert env.calls.of("PutParameter") == 2  # every call renews the lease


def test_concurrent_start_requests_are_harmless(env: Env) -> None:
    env.set_state("stopped")
    answers: list[dict] = []
    errors: list[Exception] = []

    def worker() -> None:
        try:
            answers.append(start(env))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(answers) == 4
    assert all(a["ok"] and a["state"] == "running" for a in answers)
    assert env.state() == "running"
    assert env.calls.of("StopInstances") == 0


def test_start_racing_another_start_treats_incorrect_state_as_done(env: Env, monkeypatch) -> None:
    from botocore.exceptions import ClientError

    from autostop import ec2

    env.set_state("stopped")

    def lost_race(instance_id: str) -> None:
        env.set_state("pending")
        raise ClientError(
            {"Error": {"Code": "IncorrectInstanceState", "Message": "pending"}}, "StartInstances"
        )

    monkeypatch.setattr(ec2, "start", lost_race)
    answer = start(env)
    assert answer["ok"] is True
    assert answer["started"] is False
    assert answer["state"] == "pending"
