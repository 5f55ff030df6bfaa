"""EC2 operations on the one GPU instance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from autostop_contract import Code
from botocore.exceptions import ClientError

from autostop import aws
from autostop.errors import RequestError

#: StartInstances errors that mean "this type has no capacity here now": try the next type.
CAPACITY_ERRORS = frozenset({"InsufficientInstanceCapacity", "Unsupported"})
#: StartInstances refusing a stopped Spot Instance whose Spot request is not in a state that lets us
#: start it. EC2 user guide, "Behavior of Spot Instance interruptions": "Only Amazon EC2 can restart
#: an interrupted stopped Spot Instance" (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/
#: interruption-behavior.html); the API answers "An error occurred (IncorrectSpotRequestState) when
#: calling the StartInstances operation: Only Amazon EC2 can restart an interrupted stopped Spot
#: Instance." It also answers so for a while after our own stop, until the persistent request has
#: moved from marked-for-stop to disabled (hashicorp/terraform-provider-aws#33399). Both pass: retry.
SPOT_START_REFUSED = "IncorrectSpotRequestState"


@dataclass(frozen=True)
class Instance:
    instance_id: str
    state: str
    instance_type: str
    launch_time: datetime | None
    public_ip: str | None
    lifecycle: str  # "on-demand" or "spot"

    @property
    def is_spot(self) -> bool:
        return self.lifecycle == "spot"


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def describe(instance_id: str) -> Instance:
    """Describe the instance; a vanished instance is ``InstanceGone``."""
    try:
        response = aws.client("ec2").describe_instances(InstanceIds=[instance_id])
    except ClientError as exc:
        if error_code(exc).startswith("InvalidInstanceID"):
            raise RequestError(
                Code.INSTANCE_GONE,
                f"instance {instance_id} does not exist (terminated or never created)",
            ) from None
        raise
    reservations = response.get("Reservations") or []
    instances = [i for r in reservations for i in r.get("Instances", [])]
    if not instances:
        raise RequestError(Code.INSTANCE_GONE, f"instance {instance_id} does not exist")
    data = instances[0]
    launch = data.get("LaunchTime")
    if isinstance(launch, datetime) and launch.tzinfo is None:
        launch = launch.replace(tzinfo=UTC)
    return Instance(
        instance_id=instance_id,
        state=data["State"]["Name"],
        instance_type=data.get("InstanceType", ""),
        launch_time=launch,
        public_ip=data.get("PublicIpAddress") or None,
        lifecycle=data.get("InstanceLifecycle", "on-demand"),
    )


def start(instance_id: str) -> None:
    aws.client("ec2").start_instances(InstanceIds=[instance_id])


def stop(instance_id: str) -> str | None:
    """StopInstances; the instance's state before this call (``PreviousState``), None if not returned.

    Only the caller that saw ``running`` (or ``pending``) made the stop: a second concurrent caller
    sees ``stopping``. EC2 API Reference, InstanceStateChange: "previousState - The previous state of
    the instance" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceStateChange.html).
    """
    response = aws.client("ec2").stop_instances(InstanceIds=[instance_id])
    for change in response.get("StoppingInstances") or []:
        if change.get("InstanceId") == instance_id:
            name = (change.get("PreviousState") or {}).get("Name")
            return str(name) if name else None
    return None


def set_instance_type(instance_id: str, instance_type: str) -> None:
    """Change the type of a stopped on-demand instance (never a Spot Instance: see control)."""
    aws.client("ec2").modify_instance_attribute(InstanceId=instance_id, InstanceType={"Value": instance_type})
