"""Spot request cleanup around `make destroy` and `make replace-instance`.

A persistent Spot Instance request outlives the instance Terraform destroys or replaces
(hashicorp/terraform-provider-aws#38142): AWS reopens it and launches a new, untracked GPU that bills.
So, around Terraform:

1. ``record`` (before): read the instance's SpotInstanceRequestId (describe-instances on the Terraform
   output instance_id, or on the project's Name/Project tags when there is no state) into a file.
2. Terraform destroys or replaces the instance.
3. ``cancel`` (after): when the recorded instance is gone (terminated or shutting down), cancel its
   request, verify the request is ``cancelled`` or ``closed``, terminate any instance the request still
   has (none must be left billing), print each step, and exit non-zero when it cannot prove all that.
   When the instance is still there (Terraform was declined or failed), nothing is touched.

AWS behaviour relied on (Amazon EC2 documentation):
- "Canceling a Spot Instance request does not terminate running Spot Instances associated with the
  request" (API Reference, CancelSpotInstanceRequests): the instances are terminated separately.
- "You can only cancel Spot Instance requests that are open, active, or disabled" ("Cancel a Spot
  Instance request", EC2 User Guide): cancelled/closed requests are left alone.
- "You stop incurring charges for an instance as soon as its state changes to shutting-down or
  terminated" (EC2 User Guide, instance lifecycle): those states count as not billing.
moto creates no spot request for RunInstances with market options: tests use botocore's Stubber.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "build" / "spot-request.json"
GONE = ("shutting-down", "terminated")
LIVE = ("pending", "running", "stopping", "stopped")
DONE = ("cancelled", "closed")
ATTEMPTS = 10
WAIT_S = 3.0


class CannotProve(Exception):
    """The request or its instances could not be shown to be cancelled and gone."""


def terraform_outputs(tf_dir: Path) -> dict[str, Any]:
    """The stack's outputs ({} when terraform or the state is not available).

    The same reading as ``gpu-autostop emergency-stop`` (cli/gpu_autostop_cli/emergency.py): the deploy
    toolchain (.venv-deploy) installs none of the project's packages, and this script retires with the
    persistent spot requests (issue 16).
    """
    try:
        result = subprocess.run(
            ["terraform", f"-chdir={tf_dir}", "output", "-json"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if result.returncode != 0:
        return {}
    try:
        raw = json.loads(result.stdout or "{}")
    except ValueError:
        return {}
    return {k: v.get("value") for k, v in raw.items() if isinstance(v, dict)}


def manual_commands(region: str, request_id: str) -> str:
    return (
        f"check by hand: aws ec2 describe-spot-instance-requests --region {region} "
        f"--spot-instance-request-ids {request_id} "
        "--query 'SpotInstanceRequests[].[State,InstanceId]'; cancel it: "
        f"aws ec2 cancel-spot-instance-requests --region {region} --spot-instance-request-ids {request_id}; "
        f"then terminate any instance of it: aws ec2 describe-instances --region {region} "
        f"--filters Name=spot-instance-request-id,Values={request_id}"
    )


def find_instances(ec2: Any, instance_id: str | None, name: str, project_tag: str) -> list[dict[str, Any]]:
    """The stack's instances (not terminated): by id, or by the Name and Project tags."""
    if instance_id:
        kwargs: dict[str, Any] = {"InstanceIds": [instance_id]}
    else:
        kwargs = {
            "Filters": [
                {"Name": "tag:Name", "Values": [name]},
                {"Name": "tag:Project", "Values": [project_tag]},
                {"Name": "instance-state-name", "Values": list(LIVE)},
            ]
        }
    try:
        reservations = ec2.describe_instances(**kwargs)["Reservations"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidInstanceID.NotFound":
            return []
        raise
    return [i for r in reservations for i in r.get("Instances", [])]


def record(ec2: Any, region: str, instance_id: str | None, name: str, project_tag: str) -> dict[str, Any]:
    """What to clean up after Terraform: each instance and its spot request (None: on-demand)."""
    found = find_instances(ec2, instance_id, name, project_tag)
    return {
        "region": region,
        "instances": [
            {"instance_id": i["InstanceId"], "spot_request_id": i.get("SpotInstanceRequestId")}
            for i in found
            if i.get("State", {}).get("Name") != "terminated"
        ],
    }


def instance_state(ec2: Any, instance_id: str) -> str:
    found = find_instances(ec2, instance_id, "", "")
    return str(found[0]["State"]["Name"]) if found else "terminated"


def request_state(ec2: Any, request_id: str) -> tuple[str, str | None]:
    """(state, instance id) of a spot request; a request AWS no longer knows counts as closed."""
    try:
        requests = ec2.describe_spot_instance_requests(SpotInstanceRequestIds=[request_id])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidSpotInstanceRequestID.NotFound":
            return "closed", None
        raise
    [req] = requests["SpotInstanceRequests"]
    return str(req["State"]), req.get("InstanceId")


def cancel_request(
    ec2: Any, request_id: str, say: Callable[[str], None], sleep: Callable[[float], None] = time.sleep
) -> None:
    """Cancel the request, prove it cancelled/closed and that no instance of it is left billing."""
    state, _ = request_state(ec2, request_id)
    if state in DONE:
        say(f"spot request {request_id} is already {state}")
    else:
        ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=[request_id])
        say(f"spot request {request_id}: {state} -> cancel requested")
        for attempt in range(ATTEMPTS):
            state, _ = request_state(ec2, request_id)
            if state in DONE:
                break
            if attempt < ATTEMPTS - 1:
                sleep(WAIT_S)
        if state not in DONE:
            raise CannotProve(f"spot request {request_id} is still {state} after cancelling")
        say(f"spot request {request_id} is {state}")

    live = ec2.describe_instances(
        Filters=[
            {"Name": "spot-instance-request-id", "Values": [request_id]},
            {"Name": "instance-state-name", "Values": list(LIVE)},
        ]
    )["Reservations"]
    ids = sorted(i["InstanceId"] for r in live for i in r.get("Instances", []))
    if not ids:
        say(f"no instance of {request_id} is left")
        return
    # An instance the cancelled request launched after Terraform's: untracked, billing. Terminate it.
    changes = ec2.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
    for change in changes:
        say(
            f"terminated {change['InstanceId']} of {request_id} (untracked by Terraform): "
            f"{change['PreviousState']['Name']} -> {change['CurrentState']['Name']}"
        )
    still = [c["InstanceId"] for c in changes if c["CurrentState"]["Name"] not in GONE]
    if still or len(changes) != len(ids):
        raise CannotProve(f"instances of {request_id} are not terminating: {', '.join(still) or ids}")


def cleanup(
    ec2: Any, plan: dict[str, Any], say: Callable[[str], None], sleep: Callable[[float], None]
) -> int:
    instances = plan.get("instances")
    if not isinstance(instances, list):
        raise CannotProve("the record has no instance list")
    spot = [i for i in instances if isinstance(i, dict) and i.get("spot_request_id")]
    if not spot:
        say("on-demand instance (or none): no spot request to cancel")
        return 0
    region = str(plan.get("region"))
    failed = 0
    for item in spot:
        instance_id, request_id = str(item["instance_id"]), str(item["spot_request_id"])
        try:
            state = instance_state(ec2, instance_id)
            if state not in GONE:
                say(
                    f"{instance_id} is still {state} (Terraform did not remove it): "
                    f"spot request {request_id} left as is"
                )
                continue
            cancel_request(ec2, request_id, say, sleep)
        except (CannotProve, ClientError, BotoCoreError) as exc:
            print(f"cannot prove spot request {request_id} is cancelled: {exc}", file=sys.stderr)
            print(manual_commands(region, request_id), file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def main(
    argv: Sequence[str] | None = None, ec2: Any = None, sleep: Callable[[float], None] = time.sleep
) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="before Terraform: write the instance's spot request id")
    rec.add_argument("--instance-id", default=os.environ.get("INSTANCE_ID"))
    rec.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    rec.add_argument("--name", default="gpu-autostop", help="the Terraform name (Name tag)")
    rec.add_argument("--project-tag", default="gpu-autostop", help="the Terraform project_tag (Project tag)")
    rec.add_argument("--tf-dir", type=Path, default=ROOT / "terraform")
    rec.add_argument("--out", type=Path, default=RECORD)
    can = sub.add_parser("cancel", help="after Terraform: cancel the recorded request, prove it cancelled")
    can.add_argument("--record", type=Path, default=RECORD)
    args = parser.parse_args(argv)

    if args.command == "record":
        outputs = {} if args.instance_id and args.region else terraform_outputs(args.tf_dir)
        region = args.region or outputs.get("region")
        if not region:
            print("no region: pass --region (or AWS_REGION), or run `make tf-init`", file=sys.stderr)
            return 2
        client = ec2 or boto3.session.Session(region_name=region).client("ec2")
        try:
            plan = record(
                client, region, args.instance_id or outputs.get("instance_id"), args.name, args.project_tag
            )
        except (ClientError, BotoCoreError) as exc:
            print(f"cannot read the instance's spot request ({exc}); not running Terraform", file=sys.stderr)
            return 1
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n")
        for item in plan["instances"]:
            kind = f"spot request {item['spot_request_id']}" if item["spot_request_id"] else "on-demand"
            print(f"{item['instance_id']}: {kind}")
        if not plan["instances"]:
            print("no instance of this stack found: no spot request to cancel")
        return 0

    try:
        plan = json.loads(args.record.read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.record}: {exc}", file=sys.stderr)
        return 1
    if not isinstance(plan, dict) or not isinstance(plan.get("region"), str):
        print(f"{args.record} is not a spot request record", file=sys.stderr)
        return 1
    client = ec2 or boto3.session.Session(region_name=plan["region"]).client("ec2")
    try:
        return cleanup(client, plan, print, sleep)
    except CannotProve as exc:
        print(f"{args.record}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
