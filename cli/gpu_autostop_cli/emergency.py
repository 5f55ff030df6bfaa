"""Emergency stop (`make stop`): stop the GPU instance now, whatever the idle rule says.

1. Invoke the stop function with {"force": true, "reason": "make stop"} and print its answer.
2. When the function is gone, cannot be invoked, or fails, stop the instance with EC2
   StopInstances directly.

Names come from `terraform output -json` in terraform/. When the state is not available, give them
with --function / --instance-id / --region (or STOP_FUNCTION, INSTANCE_ID, AWS_REGION). Uses your
normal AWS credentials (profile or environment).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

REASON = "make stop"


def terraform_outputs(tf_dir: Path) -> dict[str, Any]:
    """The stack's outputs ({} when terraform or the state is not available)."""
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


def invoke_stop(lambda_client: Any, function: str) -> dict[str, Any] | None:
    """The stop function's answer, or None when it could not give one (gone, denied, failed)."""
    try:
        response = lambda_client.invoke(
            FunctionName=function,
            InvocationType="RequestResponse",
            Payload=json.dumps({"force": True, "reason": REASON}).encode(),
        )
    except (ClientError, BotoCoreError) as exc:
        print(f"could not invoke {function}: {exc}", file=sys.stderr)
        return None
    body = response["Payload"].read()
    try:
        answer = json.loads(body or b"null")
    except ValueError:
        answer = None
    if response.get("FunctionError") or not isinstance(answer, dict):
        print(f"{function} failed: {body.decode(errors='replace')[:2000]}", file=sys.stderr)
        return None
    return answer


def stop_directly(ec2_client: Any, instance_id: str) -> int:
    try:
        response = ec2_client.stop_instances(InstanceIds=[instance_id])
    except (ClientError, BotoCoreError) as exc:
        print(f"EC2 StopInstances for {instance_id} failed: {exc}", file=sys.stderr)
        return 1
    for change in response.get("StoppingInstances", []):
        previous = change.get("PreviousState", {}).get("Name")
        current = change.get("CurrentState", {}).get("Name")
        print(f"EC2: {change.get('InstanceId')} {previous} -> {current}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-autostop emergency-stop", description=__doc__.splitlines()[0])
    parser.add_argument("--tf-dir", type=Path, default=Path("terraform"))
    parser.add_argument("--function", default=os.environ.get("STOP_FUNCTION"))
    parser.add_argument("--instance-id", default=os.environ.get("INSTANCE_ID"))
    parser.add_argument(
        "--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    )
    args = parser.parse_args(argv)

    outputs = {} if args.function and args.instance_id and args.region else terraform_outputs(args.tf_dir)
    function = args.function or (outputs.get("function_names") or {}).get("stop")
    instance_id = args.instance_id or outputs.get("instance_id")
    region = args.region or outputs.get("region")
    if not function and not instance_id:
        print(
            "no stop function or instance id: run `make tf-init` so terraform can read the state, "
            "or pass INSTANCE_ID=i-... (and AWS_REGION=...)",
            file=sys.stderr,
        )
        return 2

    session = boto3.session.Session(region_name=region)
    if function:
        answer = invoke_stop(session.client("lambda"), function)
        if answer is not None:
            print(json.dumps(answer, indent=2, sort_keys=True))
            if answer.get("ok") is not False:
                return 0
            print(f"{function} refused the stop; stopping through EC2 instead", file=sys.stderr)
    if not instance_id:
        print("no instance id to stop through EC2 (pass INSTANCE_ID=i-...)", file=sys.stderr)
        return 1
    return stop_directly(session.client("ec2"), instance_id)


if __name__ == "__main__":
    raise SystemExit(main())
