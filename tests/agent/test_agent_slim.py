"""The slim botocore data: built in a child process, used by the clients, good enough for our three calls."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from moto import mock_aws

from autostop_agent import slim
from autostop_agent.aws import AwsSink, boto_factory
from tests.agent.helpers import INSTANCE, PARAMETER


def test_ensure_builds_once_and_the_clients_use_it(tmp_path: Path, aws_env: None) -> None:
    dest = tmp_path / "botocore-data"
    assert slim.ensure(dest) == dest
    assert (dest / "STAMP").read_text() == slim.stamp()
    endpoints = json.loads((dest / "endpoints.json").read_text())
    assert {s for p in endpoints["partitions"] for s in p["services"]} == {"ssm", "monitoring"}
    mtime = (dest / "STAMP").stat().st_mtime_ns
    assert slim.ensure(dest) == dest
    assert (dest / "STAMP").stat().st_mtime_ns == mtime  # current: not rebuilt

    factory = boto_factory("eu-central-1", dest)
    ssm, cloudwatch = factory("ssm"), factory("cloudwatch")
    assert set(ssm.meta.service_model.operation_names) == {"PutParameter", "GetParameter"}
    assert set(cloudwatch.meta.service_model.operation_names) == {"PutMetricData"}
    assert ssm.meta.endpoint_url == "https://ssm.eu-central-1.amazonaws.com"
    assert cloudwatch.meta.endpoint_url == "https://monitoring.eu-central-1.amazonaws.com"


def test_a_stale_stamp_is_rebuilt_and_a_failure_falls_back(tmp_path: Path) -> None:
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "STAMP").write_text("format 0, botocore 0.0.0")
    assert slim.ensure(dest) == dest
    assert (dest / "STAMP").read_text() == slim.stamp()
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    assert slim.ensure(blocked / "data") is None  # cannot be built: the caller uses botocore's full data


@mock_aws
def test_slim_clients_do_the_agents_calls(tmp_path: Path, aws_env: None) -> None:
    sink = AwsSink(boto_factory("us-east-1", tmp_path / "data"))
    assert sink.get_record(PARAMETER) is None
    assert sink.put_record(PARAMETER, '{"v": 1}')
    assert sink.get_record(PARAMETER) == '{"v": 1}'
    data = [
        {
            "MetricName": "QueueDepth",
            "Dimensions": [{"Name": "InstanceId", "Value": INSTANCE}],
            "StatisticValues": {"SampleCount": 2.0, "Sum": 3.0, "Minimum": 1.0, "Maximum": 2.0},
            "Unit": "Count",
        }
    ]
    assert sink.put_metrics("GpuAutostop", data)
    listed = boto3.client("cloudwatch", region_name="us-east-1").list_metrics(Namespace="GpuAutostop")[
        "Metrics"
    ]
    assert [m["MetricName"] for m in listed] == ["QueueDepth"]
    assert (tmp_path / "data" / "ssm").is_dir()  # the slim data was what the clients used


def test_slim_client_reports_throttling_like_the_full_one(tmp_path: Path, aws_env: None) -> None:
    from botocore.stub import Stubber

    ssm = boto_factory("us-east-1", tmp_path / "data")("ssm")
    with Stubber(ssm) as stub:
        stub.add_client_error("put_parameter", "ThrottlingException", "Rate exceeded", 400)
        stub.add_response("put_parameter", {"Version": 2, "Tier": "Standard"})
        sink = AwsSink(lambda service: ssm)
        assert sink.put_record(PARAMETER, "{}") is False
        assert sink.put_record(PARAMETER, "{}") is True
