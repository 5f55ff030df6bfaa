"""`make destroy` / `make replace-instance`: the persistent spot request is cancelled and nothing of it bills.

moto creates no spot request for RunInstances with market options, so EC2's answers are stubbed
(botocore Stubber); a stubbed call that the code does not make, or makes with other parameters, fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from scripts import spot_requests

REGION = "us-east-1"
OLD = "i-0old0000000000000"
NEW = "i-0new0000000000000"
ROGUE = "i-0rogue00000000000"
SIR = "sir-0abc"
LIVE_FILTER = [
    {"Name": "spot-instance-request-id", "Values": [SIR]},
    {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
]


@pytest.fixture
def ec2() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("ec2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def instance(iid: str, state: str, request: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"InstanceId": iid, "State": {"Name": state}}
    if request:
        found |= {"SpotInstanceRequestId": request, "InstanceLifecycle": "spot"}
    return {"Reservations": [{"Instances": [found]}]}


def request(stubber: Stubber, state: str, iid: str | None = None) -> None:
    req: dict[str, Any] = {"SpotInstanceRequestId": SIR, "State": state}
    if iid:
        req["InstanceId"] = iid
    stubber.add_response(
        "describe_spot_instance_requests", {"SpotInstanceRequests": [req]}, {"SpotInstanceRequestIds": [SIR]}
    )


def write_record(tmp_path: Path, instances: list[dict[str, Any]]) -> Path:
    path = tmp_path / "spot-request.json"
    path.write_text(json.dumps({"region": REGION, "instances": instances}))
    return path


def run_cancel(client: Any, path: Path) -> tuple[int, list[float]]:
    slept: list[float] = []
    code = spot_requests.main(["cancel", "--record", str(path)], ec2=client, sleep=slept.append)
    return code, slept


def test_record_spot_and_on_demand(
    ec2: tuple[Any, Stubber], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client, stubber = ec2
    stubber.add_response("describe_instances", instance(OLD, "stopped", SIR), {"InstanceIds": [OLD]})
    stubber.add_response("describe_instances", instance(OLD, "running"), {"InstanceIds": [OLD]})
    out = tmp_path / "rec.json"
    argv = ["record", "--instance-id", OLD, "--region", REGION, "--out", str(out)]

    assert spot_requests.main(argv, ec2=client) == 0
    assert json.loads(out.read_text()) == {
        "region": REGION,
        "instances": [{"instance_id": OLD, "spot_request_id": SIR}],
    }
    assert spot_requests.main(argv, ec2=client) == 0
    assert json.loads(out.read_text())["instances"] == [{"instance_id": OLD, "spot_request_id": None}]
    assert capsys.readouterr().out.splitlines() == [f"{OLD}: spot request {SIR}", f"{OLD}: on-demand"]


def test_record_by_tags_without_state(
    ec2: tuple[Any, Stubber], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, stubber = ec2
    monkeypatch.setattr(spot_requests, "terraform_outputs", lambda _tf: {})
    stubber.add_response(
        "describe_instances",
        instance(OLD, "running", SIR),
        {
            "Filters": [
                {"Name": "tag:Name", "Values": ["mine"]},
                {"Name": "tag:Project", "Values": ["proj"]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ]
        },
    )
    out = tmp_path / "rec.json"
    argv = ["record", "--region", REGION, "--name", "mine", "--project-tag", "proj", "--out", str(out)]
    assert spot_requests.main(argv, ec2=client) == 0
    assert json.loads(out.read_text())["instances"] == [{"instance_id": OLD, "spot_request_id": SIR}]


def test_record_denied_stops_before_terraform(ec2: tuple[Any, Stubber], tmp_path: Path) -> None:
    client, stubber = ec2
    stubber.add_client_error("describe_instances", "UnauthorizedOperation", "You are not authorized")
    argv = ["record", "--instance-id", OLD, "--region", REGION, "--out", str(tmp_path / "rec.json")]
    assert spot_requests.main(argv, ec2=client) == 1
    assert not (tmp_path / "rec.json").exists()


def test_on_demand_nothing_to_do(
    ec2: tuple[Any, Stubber], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client, _ = ec2  # no stubbed answer: any EC2 call would fail the test
    path = write_record(tmp_path, [{"instance_id": OLD, "spot_request_id": None}])
    assert run_cancel(client, path)[0] == 0
    assert capsys.readouterr().out.strip() == "on-demand instance (or none): no spot request to cancel"


def test_open_request_is_cancelled_and_verified(
    ec2: tuple[Any, Stubber], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client, stubber = ec2
    stubber.add_response("describe_instances", instance(OLD, "terminated", SIR), {"InstanceIds": [OLD]})
    request(stubber, "open")  # AWS reopened the persistent request after Terraform terminated its instance
    stubber.add_response(
        "cancel_spot_instance_requests",
        {"CancelledSpotInstanceRequests": [{"SpotInstanceRequestId": SIR, "State": "cancelled"}]},
        {"SpotInstanceRequestIds": [SIR]},
    )
    request(stubber, "open")
    request(stubber, "cancelled")
    stubber.add_response("describe_instances", {"Reservations": []}, {"Filters": LIVE_FILTER})

    code, slept = run_cancel(client, write_record(tmp_path, [{"instance_id": OLD, "spot_request_id": SIR}]))

    assert code == 0
    assert slept == [spot_requests.WAIT_S]
    assert capsys.readouterr().out.splitlines() == [
        f"spot request {SIR}: open -> cancel requested",
        f"spot request {SIR} is cancelled",
        f"no instance of {SIR} is left",
    ]


def test_already_cancelled_is_not_cancelled_again(ec2: tuple[Any, Stubber], tmp_path: Path) -> None:
    client, stubber = ec2
    stubber.add_response("describe_instances", instance(OLD, "shutting-down", SIR), {"InstanceIds": [OLD]})
    request(stubber, "cancelled")  # no cancel_spot_instance_requests stubbed: calling it would fail
    stubber.add_response("describe_instances", {"Reservations": []}, {"Filters": LIVE_FILTER})
    assert run_cancel(client, write_record(tmp_path, [{"instance_id": OLD, "spot_request_id": SIR}]))[0] == 0


def test_a_relaunched_instance_is_terminated(
    ec2: tuple[Any, Stubber], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client, stubber = ec2
    stubber.add_response("describe_instances", instance(OLD, "terminated", SIR), {"InstanceIds": [OLD]})
    request(stubber, "active", ROGUE)
    stubber.add_response(
        "cancel_spot_instance_requests",
        {"CancelledSpotInstanceRequests": [{"SpotInstanceRequestId": SIR, "State": "cancelled"}]},
        {"SpotInstanceRequestIds": [SIR]},
    )
    request(stubber, "cancelled", ROGUE)
    stubber.add_response("describe_instances", instance(ROGUE, "running", SIR), {"Filters": LIVE_FILTER})
    stubber.add_response(
        "terminate_instances",
        {
            "TerminatingInstances": [
                {
                    "InstanceId": ROGUE,
                    "PreviousState": {"Name": "running"},
                    "CurrentState": {"Name": "shutting-down"},
                }
            ]
        },
        {"InstanceIds": [ROGUE]},
    )

    code, _ = run_cancel(client, write_record(tmp_path, [{"instance_id": OLD, "spot_request_id": SIR}]))

    assert code == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"terminated {ROGUE} of {SIR} (untracked by Terraform): running -> shutting-down"
    )


def test_instance_still_there_leaves_the_request(
    ec2: tuple[Any, Stubber], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client, stubber = ec2
    stubber.add_response("describe_instances", instance(OLD, "stopped", SIR), {"InstanceIds": [OLD]})
    assert run_cancel(client, write_record(tmp_path, [{"instance_id": OLD, "spot_request_id": SIR}]))[0] == 0
    assert "still stopped (Terraform did not remove it)" in capsys.readouterr().out


def test_replace_cancels_only_the_old_request(ec2: tuple[Any, Stubber], tmp_path: Path) -> None:
    client, stubber = ec2
    # The record is the old instance's; the new instance (another request) is never looked at.
    stubber.add_response("describe_instances", instance(OLD, "terminated", SIR), {"InstanceIds": [OLD]})
    request(stubber, "closed")
    stubber.add_response("describe_instances", {"Reservations": []}, {"Filters": LIVE_FILTER})
    assert run_cancel(client, write_record(tmp_path, [{"instance_id": OLD, "spot_request_id": SIR}]))[0] == 0


def test_access_denied_prints_the_manual_commands(
    ec2: tuple[Any, Stubber], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client, stubber = ec2
    stubber.add_response("describe_instances", instance(OLD, "terminated", SIR), {"InstanceIds": [OLD]})
    request(stubber, "open")
    stubber.add_client_error(
        "cancel_spot_instance_requests", "UnauthorizedOperation", "You are not authorized"
    )

    assert run_cancel(client, write_record(tmp_path, [{"instance_id": OLD, "spot_request_id": SIR}]))[0] == 1
    err = capsys.readouterr().err
    assert f"cannot prove spot request {SIR} is cancelled" in err
    assert (
        f"aws ec2 describe-spot-instance-requests --region {REGION} --spot-instance-request-ids {SIR}" in err
    )
    assert f"aws ec2 cancel-spot-instance-requests --region {REGION} --spot-instance-request-ids {SIR}" in err


def test_request_that_stays_active_fails(ec2: tuple[Any, Stubber], tmp_path: Path) -> None:
    client, stubber = ec2
    stubber.add_response("describe_instances", instance(OLD, "terminated", SIR), {"InstanceIds": [OLD]})
    request(stubber, "open")
    stubber.add_response(
        "cancel_spot_instance_requests",
        {"CancelledSpotInstanceRequests": [{"SpotInstanceRequestId": SIR, "State": "open"}]},
        {"SpotInstanceRequestIds": [SIR]},
    )
    for _ in range(spot_requests.ATTEMPTS):
        request(stubber, "open")

    code, slept = run_cancel(client, write_record(tmp_path, [{"instance_id": OLD, "spot_request_id": SIR}]))

    assert code == 1
    assert len(slept) == spot_requests.ATTEMPTS - 1


def test_a_bad_record_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('["not", "a", "record"]')
    assert spot_requests.main(["cancel", "--record", str(tmp_path / "bad.json")], ec2=object()) == 1
    assert spot_requests.main(["cancel", "--record", str(tmp_path / "missing.json")], ec2=object()) == 1
