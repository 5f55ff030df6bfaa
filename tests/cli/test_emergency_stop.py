"""`make stop`: force-stop through the stop function, or through EC2 when the function is gone."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gpu_autostop_cli import emergency as emergency_stop

REGION = "us-east-1"


@pytest.fixture
def instance_id(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "STOP_FUNCTION", "INSTANCE_ID"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        image = ec2.describe_images()["Images"][0]["ImageId"]
        reservation = ec2.run_instances(ImageId=image, InstanceType="g4dn.xlarge", MinCount=1, MaxCount=1)
        yield reservation["Instances"][0]["InstanceId"]


def state(instance: str) -> str:
    ec2 = boto3.client("ec2", region_name=REGION)
    return str(
        ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"]
    )


def test_function_gone_stops_through_ec2(instance_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = emergency_stop.main(
        ["--function", "gpu-autostop-stop", "--instance-id", instance_id, "--region", REGION]
    )

    assert code == 0
    assert state(instance_id) == "stopped"
    captured = capsys.readouterr()
    assert "could not invoke gpu-autostop-stop" in captured.err
    assert f"EC2: {instance_id} running -> stopping" in captured.out


def test_function_answer_is_enough(instance_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []

    class FakeLambda:
        def invoke(self, **kwargs: Any) -> dict[str, Any]:
            sent.append(kwargs)
            answer = {"ok": True, "stopped": True, "reason": "forced: make stop", "idle_minutes": 0}
            return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())}

    real_client = boto3.session.Session.client

    def client(self: boto3.session.Session, service: str, *args: Any, **kwargs: Any) -> Any:
        return FakeLambda() if service == "lambda" else real_client(self, service, *args, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "client", client)

    code = emergency_stop.main(
        ["--function", "gpu-autostop-stop", "--instance-id", instance_id, "--region", REGION]
    )

    assert code == 0
    assert json.loads(sent[0]["Payload"]) == {"force": True, "reason": "make stop"}
    assert sent[0]["InvocationType"] == "RequestResponse"
    assert state(instance_id) == "running"  # the function's job, not EC2 directly


def test_function_error_falls_back_to_ec2(instance_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class FailingLambda:
        def invoke(self, **kwargs: Any) -> dict[str, Any]:
            body = {"errorMessage": "boom", "errorType": "RuntimeError"}
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": io.BytesIO(json.dumps(body).encode()),
            }

    real_client = boto3.session.Session.client

    def client(self: boto3.session.Session, service: str, *args: Any, **kwargs: Any) -> Any:
        return FailingLambda() if service == "lambda" else real_client(self, service, *args, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "client", client)

    assert emergency_stop.main(["--function", "f", "--instance-id", instance_id, "--region", REGION]) == 0
    assert state(instance_id) == "stopped"


def test_nothing_to_stop_explains(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("STOP_FUNCTION", "INSTANCE_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(emergency_stop, "terraform_outputs", lambda tf_dir: {})

    assert emergency_stop.main(["--tf-dir", str(tmp_path)]) == 2
    assert "INSTANCE_ID=i-" in capsys.readouterr().err


def test_names_come_from_terraform_outputs(instance_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = {"function_names": {"stop": "gpu-autostop-stop"}, "instance_id": instance_id, "region": REGION}
    monkeypatch.setattr(emergency_stop, "terraform_outputs", lambda tf_dir: outputs)

    assert emergency_stop.main([]) == 0
    assert state(instance_id) == "stopped"
