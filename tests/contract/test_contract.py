"""autostop_contract: the one definition of the record, the time format, numbers and error codes.

The writer (``record_document``, used by the agent) is tested against the reader (``read_record``,
used by the functions), and each side is checked to take these from the contract, not its own copy.
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from autostop_contract import (
    ACTIONABLE,
    FUTURE_TOLERANCE,
    RECORD_VERSION,
    AgentRecord,
    Code,
    InvalidRecord,
    bounded_number,
    encode_record,
    is_placeholder,
    iso,
    parse_time,
    read_record,
    record_document,
    whole_number,
)
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
SERVING = AgentRecord(
    instance_id="i-0123456789abcdef0",
    boot_at=NOW - timedelta(minutes=30),
    heartbeat_at=NOW,
    comfyui_ready=True,
    ready_at=NOW - timedelta(minutes=27),
    queue_running=1,
    queue_pending=2,
    gpu_utilization_pct=87.5,
    sessions=1,
    last_activity_at=NOW - timedelta(seconds=5),
    images_completed=12,
)


def stored(record: AgentRecord, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a reader gets back: the document as text, parsed again."""
    data: dict[str, Any] = json.loads(encode_record(record_document(record, extra)))
    return data


# ---- time ----------------------------------------------------------------------------------------


def test_iso_is_utc_whole_seconds_with_a_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert iso(datetime(2026, 12, 2, 14, 0, 7, 999_999, tzinfo=plus_two)) == "2026-12-02T12:00:07Z"
    assert iso(None) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-02T12:00:00Z", NOW),
        ("2026-12-02T14:00:00+02:00", NOW),
        ("2026-12-02T12:00:00", NOW),  # no offset: UTC
        ("2026-12-02T12:00:00.250Z", NOW + timedelta(milliseconds=250)),
    ],
)
def test_parse_time_reads_what_writers_write(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "yesterday",
        "2026-13-01T00:00:00Z",
        1764676800,
        True,
        ["2026-12-02T12:00:00Z"],
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "1999-12-31T23:59:59Z",
        "9999-01-01T00:00:00Z",
        "2026-12-02T12:00:00Z" + " " * 60,
    ],
)
def test_parse_time_refuses_what_no_writer_produces(value: object) -> None:
    assert parse_time(value) is None


@given(st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(9998, 12, 30), timezones=st.just(UTC)))
@settings(max_examples=60, derandomize=True, deadline=None)
def test_iso_and_parse_time_round_trip_to_the_second(moment: datetime) -> None:
    assert parse_time(iso(moment)) == moment.replace(microsecond=0)


# ---- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (3, 3), (2.0, 2), (10**6, 10**6)])
def test_whole_number_reads_whole_numbers(value: object, expected: int) -> None:
    assert whole_number(value) == expected


@pytest.mark.parametrize("value", [True, False, "3", None, 2.5, -1, -1.0, math.inf, math.nan, [1]])
def test_whole_number_refuses_the_rest(value: object) -> None:
    assert whole_number(value) is None


def test_bounded_number_says_what_is_wrong() -> None:
    assert bounded_number(" 2.5 ", 0, 10) == 2.5
    for raw, reason in [
        ("ten", "must be a number"),
        ("nan", "between"),
        ("inf", "between"),
        ("11", "between"),
    ]:
        with pytest.raises(ValueError, match=reason):
            bounded_number(raw, 0, 10)


# ---- the record: writer against reader -----------------------------------------------------------


def test_a_serving_record_reads_back_as_written() -> None:
    data = stored(SERVING, {"cpu_utilization_pct": 3.0})
    assert data["v"] == RECORD_VERSION
    assert read_record(data, NOW) == SERVING
    assert data["cpu_utilization_pct"] == 3.0  # extras travel; the reader ignores them


def test_an_installing_record_serves_nothing_whatever_the_agent_saw() -> None:
    installing = replace(SERVING, phase="installing", install_started_at=NOW - timedelta(minutes=3))
    back = read_record(stored(installing), NOW)
    assert back.phase == "installing"
    assert back.install_started_at == NOW - timedelta(minutes=3)
    assert (back.comfyui_ready, back.ready_at, back.queue_depth, back.sessions) == (False, None, 0, 0)


def test_the_writer_refuses_what_the_reader_would_refuse() -> None:
    with pytest.raises(ValueError, match="phase"):
        record_document(replace(SERVING, phase="warming"))
    with pytest.raises(ValueError, match="shadow"):
        record_document(SERVING, {"sessions": 0})


@given(
    running=st.integers(0, 50),
    pending=st.integers(0, 500),
    sessions=st.integers(0, 20),
    gpu=st.none() | st.floats(0, 100),
    ready=st.booleans(),
    installing=st.booleans(),
    seconds=st.integers(0, 3600),
)
@settings(max_examples=60, derandomize=True, deadline=None)
def test_every_record_the_writer_can_write_the_reader_reads(
    running: int, pending: int, sessions: int, gpu: float | None, ready: bool, installing: bool, seconds: int
) -> None:
    record = replace(
        SERVING,
        queue_running=running,
        queue_pending=pending,
        sessions=sessions,
        gpu_utilization_pct=gpu,
        comfyui_ready=ready,
        last_activity_at=NOW - timedelta(seconds=seconds),
        phase="installing" if installing else "serving",
    )
    back = read_record(stored(record), NOW)
    assert back.gpu_utilization_pct == gpu
    assert back.last_activity_at == record.last_activity_at
    if installing:
        assert (back.comfyui_ready, back.queue_depth, back.sessions) == (False, 0, 0)
    else:
        assert back == record


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"v": 3}, "unknown record version"),
        ({"v": True}, "unknown record version"),
        ({"instance_id": 7}, "instance_id must be a string"),
        ({"comfyui_ready": "yes"}, "comfyui_ready must be true or false"),
        ({"gpu_utilization_pct": -1}, "gpu_utilization_pct"),
        ({"gpu_utilization_pct": "NaN"}, "gpu_utilization_pct"),
        ({"queue_running": 1.5}, "queue_running must be a whole number"),
        ({"queue_pending": -2}, "queue_pending must not be negative"),
        ({"sessions": None}, "sessions must be a whole number"),
        ({"phase": "warming"}, "phase must be one of"),
        ({"heartbeat_at": "soon"}, "heartbeat_at is not an ISO-8601 time"),
        ({"last_activity_at": iso(NOW + FUTURE_TOLERANCE + timedelta(seconds=1))}, "in the future"),
    ],
)
def test_the_reader_distrusts_each_bad_field(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidRecord, match=problem):
        read_record({**stored(SERVING), **change}, NOW)


@pytest.mark.parametrize("key", ["heartbeat_at", "queue_running", "queue_pending", "sessions"])
def test_the_reader_requires_what_the_stop_rule_reads(key: str) -> None:
    data = stored(SERVING)
    del data[key]
    with pytest.raises(InvalidRecord, match=f"{key} is missing"):
        read_record(data, NOW)


def test_a_version_1_record_and_the_placeholder() -> None:
    v1 = {k: v for k, v in stored(SERVING).items() if k not in {"phase", "install_started_at"}} | {"v": 1}
    assert read_record(v1, NOW) == SERVING
    assert is_placeholder({"v": 1})
    assert not is_placeholder(v1)


# ---- error codes ---------------------------------------------------------------------------------


def _code_members_used(folder: Path) -> set[str]:
    used: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "Code"
            ):
                used.add(node.attr)
    return used


def test_every_code_the_functions_answer_is_in_the_contract() -> None:
    used = _code_members_used(ROOT / "functions" / "autostop")
    assert used == set(Code.__members__), "a code nobody answers, or one the contract lacks"


def test_no_function_raises_a_code_spelled_out() -> None:
    spelled = re.compile(r'RequestError\(\s*"')
    offenders = [p for p in (ROOT / "functions").rglob("*.py") if spelled.search(p.read_text())]
    assert not offenders


@pytest.mark.parametrize("code", ACTIONABLE)
def test_every_client_says_what_an_actionable_code_means(code: Code) -> None:
    """The operator command's hints and both n8n workflows name each code a client must act on."""
    from gpu_autostop_cli.client import HINTS

    assert code.value in HINTS
    for workflow in sorted((ROOT / "examples" / "n8n").glob("*.json")):
        assert f"{code.value}:" in workflow.read_text(), f"{workflow.name} does not handle {code.value}"


# ---- each side takes these from the contract -----------------------------------------------------


def _imports(folder: Path) -> set[str]:
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
    return found


def test_neither_side_imports_the_others_folder() -> None:
    agent, functions = _imports(ROOT / "agent"), _imports(ROOT / "functions")
    assert "autostop_contract" in agent
    assert "autostop_contract" in functions
    assert "autostop" not in agent
    assert "autostop_agent" not in functions


def test_no_side_keeps_its_own_copy_of_the_contract() -> None:
    """One definition: no other module defines the record's reader, the time parser or quote()."""
    contract_names = {"parse_time", "parse_iso", "iso", "quote", "clip", "_validated", "whole_number"}
    for folder in ("agent", "functions", "cli", "tools"):
        for path in (ROOT / folder).rglob("*.py"):
            defined = {
                node.name
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.FunctionDef) and node.name in contract_names
            }
            assert not defined, f"{path.relative_to(ROOT)} defines {sorted(defined)} again"
