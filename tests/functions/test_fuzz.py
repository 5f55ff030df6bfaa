"""Property-based: every event shape and every stored record gets an answer, never an exception.

Over the REAL handlers (start, status, stop, cost_report, budget) on moto. A handler answers
``ok: true`` or ``{"ok": false, "error": {"code", "message"}}`` with a short message; only AWS's own
failures (ClientError) may raise. Capped and derandomized, so the run is the same every time.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autostop.handlers import _common, budget, cost_report, start, status, stop

from .conftest import AGENT_PARAM, LEASE_PARAM, Env, FakeContext

FUZZ = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DEEP = "[" * 5000 + "]" * 5000
NASTY_TIMES = st.sampled_from(
    [
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "2026-13-40T99:99:99Z",
        "2026-11-22T08:00:00+23:59",
        "",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    NASTY_TIMES,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=16,
)
KEYS = st.sampled_from(
    ["wait", "timeout_s", "force", "reason", "send", "source", "detail-type", "alarmData", "Records", "x"]
)


def sns(message: Any, subject: Any = "s") -> dict[str, Any]:
    return {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": message, "Subject": subject}}]}


EVENTS = st.one_of(
    JSON,
    st.dictionaries(KEYS, JSON, max_size=4),
    st.builds(lambda m, s: sns(m, s), JSON, JSON),
    st.builds(lambda m: sns(json.dumps(m, allow_nan=True)), JSON),
    st.just(sns(DEEP)),
    st.just(sns(json.dumps({"AlarmName": {"deep": [1] * 500}, "NewStateValue": 7}))),
    st.builds(lambda a: {"source": "aws.cloudwatch", "alarmData": a}, JSON),
    st.builds(lambda d: {"source": "aws.events", "detail-type": "Scheduled Event", "detail": d}, JSON),
)
RECORD_FIELDS = st.dictionaries(
    st.sampled_from(
        [
            "v",
            "instance_id",
            "boot_at",
            "heartbeat_at",
            "comfyui_ready",
            "ready_at",
            "queue_running",
            "queue_pending",
            "sessions",
            "last_activity_at",
            "images_completed",
            "gpu_utilization_pct",
            "phase",
            "install_started_at",
        ]
    ),
    JSON,
    max_size=8,
)


@pytest.fixture
def handler_env(env: Env, monkeypatch: pytest.MonkeyPatch) -> Env:
    variables = {
        "INSTANCE_ID": env.instance_id,
        "AGENT_STATE_PARAMETER": AGENT_PARAM,
        "LEASE_PARAMETER": LEASE_PARAM,
        "ALERT_TOPIC_ARN": env.topic_arn,
        "INSTANCE_TYPE": "g4dn.xlarge",
        "LEDGER_PARAMETER": "/gpu-autostop/ledger",
        "CAP_PARAMETER": "/gpu-autostop/cap",
        "STOP_INTENT_PARAMETER": "/gpu-autostop/stop-intent",
        "SILENT_NOTE_PARAMETER": "/gpu-autostop/silent-note",
    }
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(_common, "clock", lambda: env.clock)
    _common.config.cache_clear()
    return env


def assert_answer(handler: Any, event: Any) -> None:
    try:
        answer = handler(event, FakeContext())
    except ClientError:
        return  # AWS's own failure: raises, so that async invocations retry and reach the DLQ
    assert isinstance(answer, dict)
    assert isinstance(answer.get("ok"), bool)
    if not answer["ok"]:
        assert isinstance(answer["error"]["code"], str)
        assert isinstance(answer["error"]["message"], str)
        assert len(answer["error"]["message"]) < 400, answer["error"]["message"]
    json.dumps(answer, allow_nan=False)  # the answer itself is valid JSON


@pytest.mark.parametrize(
    "handler", [start.handler, status.handler, stop.handler, cost_report.handler, budget.handler]
)
@FUZZ
@given(event=EVENTS)
def test_every_event_gets_an_answer(handler_env: Env, handler: Any, event: Any) -> None:
    assert_answer(handler, event)


@FUZZ
@given(fields=RECORD_FIELDS, lease=JSON, raw=st.one_of(st.none(), st.just(DEEP), st.text(max_size=40)))
def test_every_stored_record_and_lease_gets_an_answer(
    handler_env: Env, fields: dict[str, Any], lease: Any, raw: str | None
) -> None:
    ssm = handler_env.client("ssm")
    text = raw if raw else json.dumps(fields, allow_nan=True)
    ssm.put_parameter(Name=AGENT_PARAM, Value=text or "{}", Type="String", Overwrite=True)
    lease_text = json.dumps({"v": 1, "requested_at": lease}, allow_nan=True)
    ssm.put_parameter(Name=LEASE_PARAM, Value=lease_text, Type="String", Overwrite=True)
    handler_env.set_state("running")
    for handler in (status.handler, stop.handler):
        assert_answer(handler, {})
