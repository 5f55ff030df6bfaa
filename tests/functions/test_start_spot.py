"""start on a Spot Instance: never resized, capacity and interruption answered with retry_after_s.

moto lets a stopped Spot Instance change its type and restarts an interrupted one on request; AWS
does neither ("While a Spot Instance is stopped, you can modify some of its instance attributes, but
not the instance type"; "Only Amazon EC2 can restart an interrupted stopped Spot Instance": EC2 user
guide, "Behavior of Spot Instance interruptions"). So the tests mark the instance as spot in moto's
backend, inject the refusals AWS gives, and assert that ModifyInstanceAttribute is never called.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2 import ec2_backends

from autostop import aws, control
from autostop.errors import RequestError
from autostop.events import StartRequest
from autostop.handlers import start as start_handler

from .conftest import LAUNCH, REGION, Env, FakeContext

#: What StartInstances answers for an interrupted stopped Spot Instance (the message AWS sends).
SPOT_REFUSAL = {
    "Error": {
        "Code": "IncorrectSpotRequestState",
        "Message": "Only Amazon EC2 can restart an interrupted stopped Spot Instance.",
    }
}


def make_spot(env: Env) -> None:
    ec2_backends[DEFAULT_ACCOUNT_ID][REGION].get_instance(env.instance_id).lifecycle = "spot"
    env.set_state("stopped")
    assert env.describe()["InstanceLifecycle"] == "spot"


def run(env: Env) -> tuple[dict[str, Any], control.Outcome | None]:
    try:
        return control.start(env.config, env.clock, StartRequest(), request_id="req-1")
    except RequestError as exc:
        return exc.answer(), None


def refuse_start(env: Env, response: dict[str, Any]) -> None:
    """StartInstances fails as AWS answers it (the hook runs before moto sees the request)."""

    def hook(model: Any, **_: Any) -> None:
        if model.name == "StartInstances":
            raise ClientError(response, "StartInstances")

    aws.client("ec2").meta.events.register("before-parameter-build.ec2", hook)


def test_a_spot_instance_starts_with_its_own_type_whatever_instance_type_says(env: Env) -> None:
    make_spot(env)
    env.with_config(instance_type="g5.xlarge", fallback_instance_types=("g6.xlarge",))
    answer, outcome = run(env)
    assert answer["ok"] is True
    assert answer["started"] is True
    assert answer["instance_type"] == "g4dn.xlarge"
    assert env.describe()["InstanceType"] == "g4dn.xlarge"
    assert env.calls.mutating_ec2 == ["StartInstances"]  # no ModifyInstanceAttribute
    assert outcome is not None
    assert "a Spot Instance keeps its type" in outcome.reason


def test_no_spot_capacity_is_no_capacity_without_trying_other_types(env: Env) -> None:
    make_spot(env)
    env.with_config(fallback_instance_types=("g5.xlarge", "g6.xlarge"))
    env.capacity_short = {"g4dn.xlarge"}
    answer, _ = run(env)
    assert answer["ok"] is False
    assert answer["error"]["code"] == "NoCapacity"
    assert "Spot Instance keeps its type" in answer["error"]["message"]
    assert answer["retry_after_s"] == control.RETRY_AFTER_NO_CAPACITY_S
    assert answer["tried_instance_types"] == ["g4dn.xlarge"]
    assert env.calls.mutating_ec2 == ["StartInstances"]
    assert env.state() == "stopped"
    assert env.describe()["InstanceType"] == "g4dn.xlarge"


def test_an_interrupted_spot_instance_is_spot_interrupted_with_retry_after(env: Env) -> None:
    make_spot(env)
    env.with_config(fallback_instance_types=("g5.xlarge",))
    refuse_start(env, SPOT_REFUSAL)
    answer, _ = run(env)
    assert answer == {
        "ok": False,
        "error": {"code": "SpotInterrupted", "message": answer["error"]["message"]},
        "instance_id": env.instance_id,
        "state": "stopped",
        "retry_after_s": control.RETRY_AFTER_SPOT_S,
    }
    assert "only EC2 restarts it" in answer["error"]["message"]
    assert env.calls.mutating_ec2 == ["StartInstances"]
    assert env.state() == "stopped"


def test_the_spot_refusal_with_a_stubbed_ec2_makes_no_other_ec2_call(env: Env) -> None:
    """Stubber: any EC2 call beyond the two stubbed ones (a ModifyInstanceAttribute) would fail."""
    client = aws.client("ec2")
    with Stubber(client) as stub:
        stub.add_response(
            "describe_instances",
            {
                "Reservations": [
                    {
                        "Instances": [
                            {
                                "InstanceId": env.instance_id,
                                "State": {"Code": 80, "Name": "stopped"},
                                "InstanceType": "g4dn.xlarge",
                                "LaunchTime": LAUNCH,
                                "InstanceLifecycle": "spot",
                            }
                        ]
                    }
                ]
            },
            {"InstanceIds": [env.instance_id]},
        )
        stub.add_client_error(
            "start_instances",
            service_error_code="IncorrectSpotRequestState",
            service_message=SPOT_REFUSAL["Error"]["Message"],
            http_status_code=400,
            expected_params={"InstanceIds": [env.instance_id]},
        )
        env.with_config(instance_type="g5.xlarge", fallback_instance_types=("g6.xlarge",))
        answer, _ = run(env)
        stub.assert_no_pending_responses()
    assert answer["error"]["code"] == "SpotInterrupted"
    assert env.lease() is not None  # the request is still recorded, as for NoCapacity


def test_the_refusal_on_an_on_demand_instance_is_answered_the_same(env: Env) -> None:
    env.set_state("stopped")
    refuse_start(env, SPOT_REFUSAL)
    answer, _ = run(env)
    assert answer["error"]["code"] == "SpotInterrupted"
    assert env.calls.mutating_ec2 == ["StartInstances"]


def test_other_start_failures_still_raise_on_a_spot_instance(env: Env) -> None:
    make_spot(env)
    refuse_start(env, {"Error": {"Code": "UnauthorizedOperation", "Message": "no"}})
    with pytest.raises(ClientError):
        control.start(env.config, env.clock, StartRequest())


def test_the_handler_answers_spot_interrupted_as_ok_false(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    make_spot(env)
    refuse_start(env, SPOT_REFUSAL)
    for key, value in {
        "INSTANCE_ID": env.instance_id,
        "AGENT_STATE_PARAMETER": env.config.agent_state_parameter,
        "LEASE_PARAMETER": env.config.lease_parameter,
    }.items():
        monkeypatch.setenv(key, value)
    from autostop.handlers import _common

    monkeypatch.setattr(_common, "clock", lambda: env.clock)
    _common.config.cache_clear()
    answer = start_handler.handler({}, FakeContext())
    assert answer["ok"] is False
    assert answer["error"]["code"] == "SpotInterrupted"
    assert answer["retry_after_s"] == control.RETRY_AFTER_SPOT_S
