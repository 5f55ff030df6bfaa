"""CloudWatch EC2 metrics for the stop rule's fallback when the agent is silent."""

from __future__ import annotations

from datetime import datetime, timedelta

from autostop import aws
from autostop.idle import METRIC_PERIOD_SECONDS, Ec2Metrics


def read_ec2_metrics(instance_id: str, now: datetime, window_minutes: float) -> Ec2Metrics:
    """Highest CPUUtilization (Maximum) and NetworkOut (Sum per period) over the window."""
    cloudwatch = aws.client("cloudwatch")
    start = now - timedelta(minutes=window_minutes)
    highest: dict[str, float | None] = {}
    datapoints = 0
    for metric, statistic in (("CPUUtilization", "Maximum"), ("NetworkOut", "Sum")):
        response = cloudwatch.get_metric_statistics(
            Namespace="AWS/EC2",
            MetricName=metric,
            Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
            StartTime=start,
            EndTime=now,
            Period=METRIC_PERIOD_SECONDS,
            Statistics=[statistic],
        )
        values = [float(p[statistic]) for p in response.get("Datapoints", []) if statistic in p]
        highest[metric] = max(values) if values else None
        datapoints += len(values)
    return Ec2Metrics(
        cpu_max_percent=highest["CPUUtilization"],
        network_out_max_bytes=highest["NetworkOut"],
        datapoints=datapoints,
    )
