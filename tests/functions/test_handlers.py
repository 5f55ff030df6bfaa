"""The Lambda entry points as Lambda invokes them: trigger shapes, bad input, config, logs, metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from autostop.config import ConfigError
from autostop.handlers import _common, start, status, stop

from .conftest import Env, iso

EVENTS = Path(__file__).parent / "events"


class Context:
    function_name = "gpu-autostop-stop"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-stop"
    memory_limit_in_mb = 128
    aws_request_id = "6f1d2c3b-0000-4000-8000-000000000001"
    log_group_name = "/aws/lambda/gpu-autostop-stop"
    log_stream_name = "2026/11/22/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


class JsonLines(logging.Handler):
    """Keeps what the Powertools Logger writes, formatted by its own JSON formatter."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(_common.logger.registered_formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines() -> Iterator[JsonLines]:
    handler = JsonLines()
    target = logging.getLogger(_common.SERVICE)
    target.addHandler(handler)
    yield handler
    target.removeHandler(handler)


@pytest.fixture
def lambda_env(env: Env, monkeypatch: pytest.MonkeyPatch) -> Env:
    variables = {
        "INSTANCE_ID": env.instance_id,
        "AGENT_STATE_PARAMETER": env.config.agent_state_parameter,
        "LEASE_PARAMETER": env.config.lease_parameter,
        "ALERT_TOPIC_ARN": env.topic_arn,
        "IDLE_MINUTES": "10",
        "BOOT_GRACE_MINUTES": "5",
        "HEARTBEAT_SECONDS": "60",
        "INSTANCE_TYPE": "g4dn.xlarge",
    }
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(_common, "clock", lambda: env.clock)
    _common.config.cache_clear()
    return env


def logs(log_lines: JsonLines) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_lines.lines]


def emf(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The one CloudWatch embedded-metric document Metrics printed."""
    [document] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith('{"_aws"')]
    return document  # type: ignore[no-any-return]


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def idle(env: Env) -> None:
    env.write_record(last_activity_at=iso(env.clock.now() - timedelta(minutes=20)))


@pytest.mark.parametrize("name", ["alarm_direct.json", "alarm_sns.json", "schedule.json"])
def test_stop_accepts_every_trigger_shape_and_verifies_idleness(lambda_env: Env, name: str) -> None:
    idle(lambda_env)
    answer = stop.handler(event(name), Context())
    assert answer["ok"] is True
    assert answer["stopped"] is True
    assert lambda_env.state() == "stopped"


@pytest.mark.parametrize("name", ["alarm_direct.json", "alarm_sns.json", "schedule.json"])
def test_stop_never_trusts_the_trigger(lambda_env: Env, name: str) -> None:
    lambda_env.write_record(queue_running=1)
    answer = stop.handler(event(name), Context())
    assert answer["stopped"] is False
    assert answer["decision"] == "queue_busy"
    assert lambda_env.state() == "running"


def test_manual_check_without_force_verifies_idleness(lambda_env: Env) -> None:
    lambda_env.write_record(last_activity_at=iso(lambda_env.clock.now()))
    assert stop.handler({}, Context())["stopped"] is False
    assert stop.handler({"force": True, "reason": "make stop"}, Context())["stopped"] is True


def test_stop_logs_structured_decision_and_emits_metrics(
    lambda_env: Env, capsys: pytest.CaptureFixture[str], log_lines: JsonLines
) -> None:
    idle(lambda_env)
    stop.handler(event("alarm_direct.json"), Context())
    [handled] = [r for r in logs(log_lines) if r.get("message") == "stop handled"]
    assert handled["instance_id"] == lambda_env.instance_id
    assert handled["decision"] == "idle"
    assert handled["reason"].startswith("idle for 20.0 minutes")
    assert handled["trigger"] == "alarm"
    assert handled["alarm"] == "gpu-autostop-idle"
    assert handled["function_request_id"] == Context.aws_request_id
    metrics = emf(capsys)
    assert metrics["Stops"] == [1.0]
    assert metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "GpuAutostop"


def test_declined_stop_counts_stops_declined(lambda_env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    lambda_env.write_record(sessions=2)
    stop.handler(event("schedule.json"), Context())
    metrics = emf(capsys)
    assert metrics["StopsDeclined"] == [1.0]
    assert "Stops" not in metrics


def test_start_handler_emits_starts_metric_and_logs_type(
    lambda_env: Env, capsys: pytest.CaptureFixture[str], log_lines: JsonLines
) -> None:
    lambda_env.set_state("stopped")
    answer = start.handler({"wait": "none"}, Context())
    assert answer["started"] is True
    [handled] = [r for r in logs(log_lines) if r.get("message") == "start handled"]
    assert handled["decision"] == "started"
    assert handled["instance_type"] == "g4dn.xlarge"
    assert handled["state"] == "running"
    assert emf(capsys)["Starts"] == [1.0]


def test_start_handler_logs_the_fallback_type(
    lambda_env: Env, monkeypatch: pytest.MonkeyPatch, log_lines: JsonLines
) -> None:
    monkeypatch.setenv("FALLBACK_INSTANCE_TYPES", "g5.xlarge, g6.xlarge")
    _common.config.cache_clear()
    lambda_env.set_state("stopped")
    lambda_env.capacity_short = {"g4dn.xlarge"}
    answer = start.handler({}, Context())
    assert answer["instance_type"] == "g5.xlarge"
    [handled] = [r for r in logs(log_lines) if r.get("message") == "start handled"]
    assert handled["instance_type"] == "g5.xlarge"
    assert handled["capacity_short"] == ["g4dn.xlarge"]


def test_status_handler_answers(lambda_env: Env) -> None:
    lambda_env.write_record()
    answer = status.handler({}, Context())
    assert answer["ok"] is True
    assert answer["ready"] is True


BAD_START_EVENTS = [
    ([], "InvalidEvent"),
    ("start", "InvalidEvent"),
    (None, "InvalidEvent"),
    (42, "InvalidEvent"),
    ({"wait": "forever"}, "InvalidWait"),
    ({"wait": 1}, "InvalidWait"),
    ({"wait": "ready", "timeout_s": -1}, "InvalidTimeout"),
    ({"wait": "ready", "timeout_s": 10**9}, "InvalidTimeout"),
    ({"wait": "ready", "timeout_s": "60"}, "InvalidTimeout"),
    ({"wait": "ready", "timeout_s": True}, "InvalidTimeout"),
    ({"wiat": "ready"}, "UnknownKeys"),
    ({"wait": "ready", "timeout": 30}, "UnknownKeys"),
]


@pytest.mark.parametrize(("bad", "code"), BAD_START_EVENTS)
def test_bad_start_input_is_refused_without_any_aws_call(lambda_env: Env, bad: Any, code: str) -> None:
    lambda_env.set_state("stopped")
    answer = start.handler(bad, Context())
    assert answer["ok"] is False
    assert answer["error"]["code"] == code
    assert answer["error"]["message"]
    assert lambda_env.calls.names == []
    assert lambda_env.state() == "stopped"


def test_unknown_keys_are_named(lambda_env: Env) -> None:
    answer = start.handler({"wiat": "ready", "timeout_s": 5}, Context())
    assert "'wiat'" in answer["error"]["message"]
    answer = stop.handler({"forse": True}, Context())
    assert answer["error"]["code"] == "UnknownKeys"
    assert "'forse'" in answer["error"]["message"]


BAD_STOP_EVENTS = [
    ([], "InvalidEvent"),
    ("stop", "InvalidEvent"),
    (None, "InvalidEvent"),
    ({"force": "yes"}, "InvalidForce"),
    ({"force": True, "reason": 5}, "InvalidReason"),
    ({"force": True, "reason": "x" * 501}, "InvalidReason"),
    ({"Records": []}, "InvalidEvent"),
    ({"Records": [{"EventSource": "aws:sqs", "body": "{}"}]}, "InvalidEvent"),
]


@pytest.mark.parametrize(("bad", "code"), BAD_STOP_EVENTS)
def test_bad_stop_input_is_refused_without_any_aws_call(lambda_env: Env, bad: Any, code: str) -> None:
    answer = stop.handler(bad, Context())
    assert answer["ok"] is False
    assert answer["error"]["code"] == code
    assert lambda_env.calls.names == []
    assert lambda_env.state() == "running"


@pytest.mark.parametrize("bad", [[], "x", None, {"verbose": True}])
def test_bad_status_input_is_refused(lambda_env: Env, bad: Any) -> None:
    answer = status.handler(bad, Context())
    assert answer["ok"] is False
    assert lambda_env.calls.names == []


@pytest.mark.parametrize("variable", ["INSTANCE_ID", "AGENT_STATE_PARAMETER", "LEASE_PARAMETER"])
def test_missing_environment_variable_raises_naming_it(
    lambda_env: Env, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.delenv(variable)
    _common.config.cache_clear()
    with pytest.raises(ConfigError, match=variable):
        status.handler({}, Context())
    assert lambda_env.calls.names == []


def test_unexpected_aws_failure_raises_for_retry_and_dlq(lambda_env: Env, monkeypatch) -> None:
    from botocore.exceptions import ClientError

    from autostop import ec2

    def throttled(instance_id: str) -> None:
        raise ClientError(
            {"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}, "StopInstances"
        )

    idle(lambda_env)
    monkeypatch.setattr(ec2, "stop", throttled)
    with pytest.raises(ClientError):
        stop.handler(event("schedule.json"), Context())
