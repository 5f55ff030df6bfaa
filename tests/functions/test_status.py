"""status: readiness only from a fresh record of this boot; the reported figures."""

from __future__ import annotations

from datetime import timedelta

import boto3

from autostop import control

from .conftest import LAUNCH, REGION, Env, iso


def status(env: Env) -> dict:
    return control.status(env.config, env.clock)


def test_not_ready_while_pending(env: Env) -> None:
    env.set_state("pending")
    env.write_record()
    answer = status(env)
    assert answer["state"] == "pending"
    assert answer["ready"] is False
    assert answer["queue_depth"] is None
    assert answer["idle_minutes"] is None
    assert answer["running_since"] == iso(LAUNCH)


def test_not_ready_on_a_stale_record(env: Env) -> None:
    env.write_record(heartbeat_at=iso(env.clock.now() - timedelta(seconds=181)))
    answer = status(env)
    assert answer["ready"] is False
    assert answer["agent"] == "stale"
    assert answer["ready_at"] is None


def test_not_ready_on_a_record_from_an_earlier_boot(env: Env) -> None:
    earlier = LAUNCH - timedelta(hours=5)
    env.write_record(boot_at=iso(earlier), ready_at=iso(earlier + timedelta(minutes=1)))
    answer = status(env)
    assert answer["ready"] is False
    assert answer["agent"] == "earlier_boot"


def test_not_ready_when_comfyui_has_not_answered(env: Env) -> None:
    env.write_record(comfyui_ready=False, ready_at=None)
    assert status(env)["ready"] is False


def test_not_ready_without_any_record(env: Env) -> None:
    answer = status(env)
    assert answer["ready"] is False
    assert answer["agent"] == "missing"


def test_not_ready_on_a_record_of_another_instance(env: Env) -> None:
    env.write_record(instance_id="i-0someoneelse")
    assert status(env)["ready"] is False


def test_not_ready_on_garbage_record(env: Env) -> None:
    env.write_raw_record("<html>not json</html>")
    answer = status(env)
    assert answer["ready"] is False
    assert answer["agent"] == "invalid"


def test_ready_on_a_fresh_record_of_this_boot_with_all_figures(env: Env) -> None:
    env.write_record(
        queue_running=1,
        queue_pending=2,
        last_activity_at=iso(env.clock.now() - timedelta(minutes=4)),
        heartbeat_at=iso(env.clock.now() - timedelta(seconds=20)),
    )
    env.write_lease(LAUNCH)
    answer = status(env)
    public_ip = env.describe()["PublicIpAddress"]
    assert answer == {
        "ok": True,
        "instance_id": env.instance_id,
        "state": "running",
        "ready": True,
        "ready_at": iso(LAUNCH + timedelta(seconds=70)),
        "public_ip": public_ip,
        "comfyui_url": f"http://{public_ip}:8188",
        "queue_depth": 3,
        "idle_minutes": 4.0,
        "running_since": iso(LAUNCH),
        "instance_type": "g4dn.xlarge",
        "agent": "current",
        "agent_problem": None,
        "phase": "serving",
    }


def test_idle_minutes_count_from_the_latest_of_activity_lease_and_launch(env: Env) -> None:
    env.write_record(last_activity_at=iso(env.clock.now() - timedelta(minutes=9)))
    env.write_lease(env.clock.now() - timedelta(minutes=2))
    assert status(env)["idle_minutes"] == 2.0


def test_stopped_instance_reports_no_url_and_no_idle_time(env: Env) -> None:
    boto3.client("ec2", region_name=REGION).stop_instances(InstanceIds=[env.instance_id])
    answer = status(env)
    assert answer["state"] == "stopped"
    assert answer["public_ip"] is None
    assert answer["comfyui_url"] is None
    assert answer["running_since"] is None
    assert answer["idle_minutes"] is None
    assert env.calls.mutating_ec2 == []


def test_custom_comfyui_port_is_in_the_url(env: Env) -> None:
    env.with_config(comfyui_port=9000)
    assert status(env)["comfyui_url"].endswith(":9000")
