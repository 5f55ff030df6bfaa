"""Shared fixtures for the control-plane tests: moto-backed AWS, a fake clock, one GPU instance."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2 import ec2_backends

from autostop import aws
from autostop.config import Config
from autostop.handlers import _common

REGION = "us-east-1"
LAUNCH = datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC)
AGENT_PARAM = "/gpu-autostop/agent-state"
LEASE_PARAM = "/gpu-autostop/lease"


class FakeClock:
    """A clock that only moves when told to; ``sleep`` advances it and runs hooks."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self.slept: list[float] = []
        self.on_sleep: list[Callable[[FakeClock], None]] = []

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(seconds)
        self._now += timedelta(seconds=seconds)
        for hook in list(self.on_sleep):
            hook(self)

    def advance(self, **kwargs: float) -> None:
        self._now += timedelta(**kwargs)

    def set(self, moment: datetime) -> None:
        self._now = moment


@dataclass
class Calls:
    """Every EC2/SSM/SNS/CloudWatch operation the code made, in order."""

    names: list[str] = field(default_factory=list)

    def of(self, operation: str) -> int:
        return self.names.count(operation)

    @property
    def mutating_ec2(self) -> list[str]:
        return [n for n in self.names if n in {"StartInstances", "StopInstances", "ModifyInstanceAttribute"}]


@dataclass
class Env:
    """The test world: the instance, config, clock and helpers to shape state."""

    instance_id: str
    config: Config
    clock: FakeClock
    calls: Calls
    topic_arn: str
    queue_url: str
    capacity_short: set[str] = field(default_factory=set)
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """Test-side clients (not recorded as calls of the code under test)."""
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=REGION)
        return self._clients[service]

    # --- EC2 -----------------------------------------------------------------------------
    @property
    def _backend_instance(self) -> Any:
        return ec2_backends[DEFAULT_ACCOUNT_ID][REGION].get_instance(self.instance_id)

    def set_state(self, state: str) -> None:
        """Put the instance in any EC2 state (moto jumps straight to running/stopped)."""
        self._backend_instance._state.name = state

    def set_launch_time(self, moment: datetime) -> None:
        """Real EC2 updates LaunchTime on every start; moto keeps the first one."""
        self._backend_instance.launch_time = moment.astimezone(UTC).replace(tzinfo=None)

    def state(self) -> str:
        return str(self.describe()["State"]["Name"])

    def describe(self) -> dict[str, Any]:
        ec2 = self.client("ec2")
        return ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"][0]["Instances"][0]  # type: ignore[no-any-return]

    # --- SSM -----------------------------------------------------------------------------
    def write_record(self, **fields: Any) -> dict[str, Any]:
        now = self.clock.now()
        record = {
            "v": 1,
            "instance_id": self.instance_id,
            "boot_at": iso(LAUNCH + timedelta(seconds=3)),
            "heartbeat_at": iso(now),
            "comfyui_ready": True,
            "ready_at": iso(LAUNCH + timedelta(seconds=70)),
            "queue_running": 0,
            "queue_pending": 0,
            "gpu_utilization_pct": 0.0,
            "sessions": 0,
            "last_activity_at": iso(LAUNCH + timedelta(seconds=70)),
            "images_completed": 0,
        }
        record.update(fields)
        self.client("ssm").put_parameter(
            Name=AGENT_PARAM, Value=json.dumps(record), Type="String", Overwrite=True
        )
        return record

    def write_raw_record(self, text: str) -> None:
        self.client("ssm").put_parameter(Name=AGENT_PARAM, Value=text, Type="String", Overwrite=True)

    def lease(self) -> dict[str, Any] | None:
        ssm = self.client("ssm")
        try:
            return json.loads(ssm.get_parameter(Name=LEASE_PARAM)["Parameter"]["Value"])  # type: ignore[no-any-return]
        except ssm.exceptions.ParameterNotFound:
            return None

    def write_lease(self, moment: datetime) -> None:
        self.client("ssm").put_parameter(
            Name=LEASE_PARAM,
            Value=json.dumps({"v": 1, "requested_at": iso(moment)}),
            Type="String",
            Overwrite=True,
        )

    # --- SNS (via an SQS subscription) ---------------------------------------------------
    def notifications(self) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return out
            for message in got:
                out.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    # --- CloudWatch ----------------------------------------------------------------------
    def put_ec2_metric(self, name: str, value: float, minutes_ago: float) -> None:
        self.client("cloudwatch").put_metric_data(
            Namespace="AWS/EC2",
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "InstanceId", "Value": self.instance_id}],
                    "Timestamp": self.clock.now() - timedelta(minutes=minutes_ago),
                    "Value": value,
                }
            ],
        )

    def with_config(self, **changes: Any) -> Config:
        self.config = replace(self.config, **changes)
        return self.config


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",  # loading moto's AMI catalogue costs ~0.2 s per test
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def env(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    ec2 = boto3.client("ec2", region_name=REGION)
    reservation = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="g4dn.xlarge"
    )
    instance_id = reservation["Instances"][0]["InstanceId"]
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic_arn = sns.create_topic(Name="gpu-autostop-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    config = Config(
        instance_id=instance_id,
        agent_state_parameter=AGENT_PARAM,
        lease_parameter=LEASE_PARAM,
        alert_topic_arn=topic_arn,
        idle_minutes=10,
        boot_grace_minutes=5,
        heartbeat_seconds=60,
        region=REGION,
        instance_type="g4dn.xlarge",
    )
    world = Env(instance_id, config, FakeClock(LAUNCH + timedelta(minutes=30)), Calls(), topic_arn, queue_url)
    world.set_launch_time(LAUNCH)

    real_create = aws._create

    def recording_client(service: str) -> Any:
        client = real_create(service)

        def record(model: Any, **_: Any) -> None:
            world.calls.names.append(model.name)
            if model.name == "StartInstances" and world.capacity_short:
                current = world.describe()["InstanceType"]
                if current in world.capacity_short:
                    raise_capacity(current)

        client.meta.events.register(f"before-parameter-build.{service}", record)
        return client

    monkeypatch.setattr(aws, "_create", recording_client)
    aws.reset()
    _common.config.cache_clear()
    yield world
    aws.reset()


def raise_capacity(instance_type: str) -> None:
    from botocore.exceptions import ClientError

    raise ClientError(
        {
            "Error": {
                "Code": "InsufficientInstanceCapacity",
                "Message": f"We currently do not have sufficient {instance_type} capacity in the "
                "Availability Zone you requested (us-east-1a).",
            }
        },
        "StartInstances",
    )


class FakeContext:
    """The Lambda context the handlers log from (Powertools needs these attributes)."""

    function_name = "gpu-autostop-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-test"
    memory_limit_in_mb = 256
    aws_request_id = "6f1d2c3b-0000-4000-8000-0000000000ff"
    log_group_name = "/aws/lambda/gpu-autostop-test"
    log_stream_name = "2026/11/22/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000
