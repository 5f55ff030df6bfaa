"""Metrics payload and AWS behaviour: moto for the happy path, botocore's Stubber for errors."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws

from autostop_agent.aws import AwsSink, Backoff, boto_factory
from tests.agent.helpers import INSTANCE, PARAMETER, ComfyStandIn, FakeClock, FakeGpu, make_rig

DIMENSIONS = [{"Name": "InstanceId", "Value": INSTANCE}]


def _metric(payload: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(m for m in payload if m["MetricName"] == name)


def test_one_put_metric_data_per_minute_with_the_three_metrics(comfy: ComfyStandIn, clock: FakeClock) -> None:
    rig = make_rig(comfy, clock, {"METRICS_NAMESPACE": "Team/Gpu"}, gpu=FakeGpu(40.0))
    comfy.busy()
    rig.run(30)
    comfy.idle()
    rig.gpu.value = 0.0
    rig.run(300)
    times = [t - 1000.0 for t, _, _ in rig.sink.metrics]
    assert times == [60.0, 120.0, 180.0, 240.0, 300.0]
    _, namespace, first = rig.sink.metrics[0]
    assert namespace == "Team/Gpu"
    assert [m["MetricName"] for m in first] == ["QueueDepth", "GPUUtilization", "ActiveSessions"]
    assert all(m["Dimensions"] == DIMENSIONS for m in first)
    assert [m["Unit"] for m in first] == ["Count", "Percent", "Count"]
    # first minute: 6 busy polls (5 prompts) then 6 idle ones
    assert _metric(first, "QueueDepth")["StatisticValues"] == {
        "SampleCount": 12.0, "Sum": 30.0, "Minimum": 0.0, "Maximum": 5.0,
    }  # fmt: skip
    assert _metric(first, "GPUUtilization")["StatisticValues"]["Maximum"] == 40.0
    assert _metric(first, "GPUUtilization")["StatisticValues"]["Minimum"] == 0.0
    assert _metric(first, "ActiveSessions")["StatisticValues"]["Maximum"] == 0.0
    # later minutes: idle only
    assert _metric(rig.sink.metrics[1][2], "QueueDepth")["StatisticValues"]["Maximum"] == 0.0


def test_metrics_leave_out_what_could_not_be_read(comfy: ComfyStandIn, clock: FakeClock) -> None:
    rig = make_rig(comfy, clock, gpu=FakeGpu(None))
    comfy.down = True
    rig.run(65)
    names = [m["MetricName"] for m in rig.sink.metrics[0][2]]
    assert names == ["ActiveSessions"]  # no GPU, ComfyUI silent: no invented zeros


def test_metrics_payload_reaches_cloudwatch_as_expected(
    comfy: ComfyStandIn, clock: FakeClock, aws_env: None
) -> None:
    client = boto3.client("cloudwatch", region_name="us-east-1")
    stub = Stubber(client)
    expected = {
        "Namespace": "GpuAutostop",
        "MetricData": [
            {"MetricName": "QueueDepth", "Dimensions": DIMENSIONS, "Unit": "Count",
             "StatisticValues": {"SampleCount": 12.0, "Sum": 0.0, "Minimum": 0.0, "Maximum": 0.0}},
            {"MetricName": "GPUUtilization", "Dimensions": DIMENSIONS, "Unit": "Percent",
             "StatisticValues": {"SampleCount": 12.0, "Sum": 24.0, "Minimum": 2.0, "Maximum": 2.0}},
            {"MetricName": "ActiveSessions", "Dimensions": DIMENSIONS, "Unit": "Count",
             "StatisticValues": {"SampleCount": 12.0, "Sum": 0.0, "Minimum": 0.0, "Maximum": 0.0}},
        ],
    }  # fmt: skip
    stub.add_response("put_metric_data", {}, expected)
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm_stub = Stubber(ssm)
    ssm_stub.add_client_error("get_parameter", "ParameterNotFound")
    for _ in range(2):  # at start (ready) and the heartbeat at 60 s
        ssm_stub.add_response("put_parameter", {"Version": 1})
    clients = {"cloudwatch": client, "ssm": ssm}
    rig = make_rig(comfy, clock, gpu=FakeGpu(2.0), sink_factory=lambda region: AwsSink(clients.__getitem__))
    with stub, ssm_stub:
        rig.run(65)
    stub.assert_no_pending_responses()
    ssm_stub.assert_no_pending_responses()


def test_throttling_backs_off_keeps_running_and_recovers(
    comfy: ComfyStandIn, clock: FakeClock, aws_env: None
) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    stub = Stubber(ssm)
    stub.add_client_error("get_parameter", "ParameterNotFound")
    for _ in range(4):
        stub.add_client_error("put_parameter", "ThrottlingException", "Rate exceeded", 400)
    stub.add_response("put_parameter", {"Version": 1})
    rig = make_rig(
        comfy,
        clock,
        {"METRICS_SECONDS": "3600"},
        sink_factory=lambda region: AwsSink({"ssm": ssm}.__getitem__),
    )
    with stub:
        rig.run(80)
    stub.assert_no_pending_responses()
    # attempts at 0, then after 5, 10, 20 and 40 s of backoff: the fifth (at 75 s) succeeds
    assert rig.agent.writes == 1
    assert rig.agent.ready
    assert rig.agent._write_backoff.failures == 0


def test_failed_writes_are_retried_with_growing_delays(comfy: ComfyStandIn, clock: FakeClock) -> None:
    rig = make_rig(comfy, clock)
    rig.sink.fail_records = 5
    rig.run(200)
    attempts = [t - 1000.0 for kind, t in rig.sink.attempts if kind == "record"]
    assert attempts[:6] == [0.0, 5.0, 15.0, 35.0, 75.0, 155.0]  # 5, 10, 20, 40, 80 s apart
    assert rig.sink.writes[0].mono - 1000.0 == 155.0
    assert rig.sink.writes[0].record["comfyui_ready"] is True  # the pending change was not lost


def test_backoff_is_capped() -> None:
    backoff = Backoff(base=5, cap=300, rng=lambda: 1.0)
    delays = [backoff.failed(0) for _ in range(10)]
    assert delays[:4] == [5, 10, 20, 40]
    assert max(delays) == 300
    backoff.succeeded()
    assert backoff.ready(0)
    assert backoff.failed(0) == 5
    jittered = Backoff(base=8, rng=lambda: 0.0)
    assert jittered.failed(0) == 6  # jitter takes up to a quarter off


def test_an_unreachable_endpoint_is_survived(comfy: ComfyStandIn, clock: FakeClock, aws_env: None) -> None:
    class Down:
        def __getattr__(self, name: str) -> Any:
            def fail(**kwargs: Any) -> Any:
                raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

            return fail

    rig = make_rig(comfy, clock, sink_factory=lambda region: AwsSink(lambda service: Down()))
    rig.run(600)
    assert rig.agent.writes == 0
    assert rig.agent.ready  # the rest of the agent carried on
    assert rig.agent._write_backoff.failures >= 5


def test_identity_from_imds_is_retried_until_it_answers(comfy: ComfyStandIn, clock: FakeClock) -> None:
    from autostop_agent.imds import Identity, ImdsError

    answers: list[Identity | None] = [None, None, Identity(INSTANCE, "eu-west-1")]
    regions: list[str] = []

    def identify() -> Identity:
        answer = answers.pop(0)
        if answer is None:
            raise ImdsError("timed out")
        return answer

    rig = make_rig(comfy, clock, {"INSTANCE_ID": "", "AWS_REGION": ""}, identify=identify)
    rig.agent.config = rig.agent.config.__class__(**{**rig.agent.config.__dict__, "region": None})
    rig.agent._sink_factory = lambda region: regions.append(region) or rig.sink  # type: ignore[assignment,func-returns-value]
    rig.run(30)
    assert regions == ["eu-west-1"]
    assert rig.records()[0]["instance_id"] == INSTANCE
    assert rig.sink.writes[0].mono - 1000.0 == 15.0  # after 5 s and 10 s of backoff


@mock_aws
def test_moto_end_to_end_record_and_metrics(comfy: ComfyStandIn, clock: FakeClock, aws_env: None) -> None:
    rig = make_rig(comfy, clock, gpu=FakeGpu(0.0), sink_factory=lambda region: AwsSink(boto_factory(region)))
    comfy.busy()
    rig.run(20)
    comfy.idle()
    rig.run(130)
    ssm = boto3.client("ssm", region_name="us-east-1")
    history = ssm.get_parameter_history(Name=PARAMETER)["Parameters"]
    values = [json.loads(p["Value"]) for p in history]
    assert [(v["queue_running"], v["queue_pending"]) for v in values] == [(1, 4), (0, 0), (0, 0), (0, 0)]
    assert values[1]["last_activity_at"] == values[0]["heartbeat_at"].replace("43Z", "58Z")
    assert all(v["comfyui_ready"] and v["instance_id"] == INSTANCE for v in values)
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    metrics = cloudwatch.list_metrics(Namespace="GpuAutostop")["Metrics"]
    assert {m["MetricName"] for m in metrics} == {"QueueDepth", "GPUUtilization", "ActiveSessions"}
    assert all(m["Dimensions"] == DIMENSIONS for m in metrics)


@mock_aws
def test_restart_restores_last_activity_through_ssm(
    comfy: ComfyStandIn, clock: FakeClock, aws_env: None
) -> None:
    factory = lambda region: AwsSink(boto_factory(region))  # noqa: E731
    first = make_rig(comfy, clock, sink_factory=factory)
    comfy.busy()
    first.run(10)
    comfy.idle()
    first.run(60)
    busy_seen = first.agent.last_activity_at
    assert busy_seen is not None
    second = make_rig(comfy, clock, sink_factory=factory)  # the agent restarted (same boot)
    second.run(5)
    ssm = boto3.client("ssm", region_name="us-east-1")
    stored = json.loads(ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"])
    assert second.agent.last_activity_at == busy_seen
    assert stored["last_activity_at"] is not None
    assert stored["activity"] == []


@pytest.mark.parametrize("code", ["AccessDeniedException", "InternalServerError", "TooManyUpdates"])
def test_any_client_error_is_contained(code: str, aws_env: None) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    stub = Stubber(ssm)
    stub.add_client_error("put_parameter", code)
    with stub:
        assert AwsSink(lambda service: ssm).put_record(PARAMETER, "{}") is False
