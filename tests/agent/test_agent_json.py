"""Hostile JSON from ComfyUI: too deep, huge numbers, NaN, wrong types everywhere.

Every answer is either a valid reading or ComfyError ("did not answer"); never another exception.
Property-based with hypothesis: derandomized and capped so the suite stays fast and repeatable.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autostop_agent.comfyui import ComfyClient, ComfyError, parse_json, prompt_counter, queue_state
from tests.agent.helpers import ComfyStandIn, FakeClock, fixture_bytes, make_rig

FAST = settings(max_examples=150, derandomize=True, deadline=None, database=None)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
#: Shapes close to the real ones, with wrong types inside: what a parser is most likely to trip on.
queue_like = st.fixed_dictionaries(
    {"queue_running": st.lists(json_values, max_size=3), "queue_pending": json_values | st.lists(json_values)}
)
prompt_like = st.fixed_dictionaries({"exec_info": st.fixed_dictionaries({"queue_remaining": json_values})})


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # RecursionError in the parser
        b'{"queue_running": ' * 50_000 + b"[]" + b"}" * 50_000,
        b'{"queue_running": [], "queue_pending": [], "n": ' + b"9" * 5000 + b"}",  # > int digit limit
        b'{"queue_running": [], "queue_pending": [], "n": NaN}',
        b'{"queue_running": [], "queue_pending": [], "n": -Infinity}',
        b'{"queue_running": [], "queue_pending": [' + b"\xff\xfe" + b"]}",
        b"\xef\xbb\xbf{}",  # a BOM
    ],
    ids=["nested-lists", "nested-objects", "huge-int", "nan", "infinity", "not-utf8", "bom"],
)
def test_hostile_json_is_comfy_error(comfy: ComfyStandIn, body: bytes) -> None:
    comfy.set_json("/queue", body)
    with pytest.raises(ComfyError):
        ComfyClient(comfy.url, 2.0).queue()


def test_deep_json_makes_the_agent_not_ready_instead_of_keeping_a_stale_queue(
    comfy: ComfyStandIn, clock: FakeClock
) -> None:
    """Before: RecursionError escaped step(), so the last busy queue stayed the agent's reading."""
    rig = make_rig(comfy, clock)
    comfy.busy()
    rig.run(6)
    assert rig.agent.queue is not None
    assert rig.agent.queue.depth == 5
    comfy.set_json("/queue", b"[" * 100_000 + b"]" * 100_000)
    for _ in range(3):
        rig.agent.step()  # does not raise
    assert rig.agent.ready is False
    assert rig.agent.queue is None
    assert rig.agent.busy is False  # the GPU and sessions are idle; the garbage is not "busy"
    comfy.set_json("/queue", fixture_bytes("queue_idle.json"))
    rig.run(2)
    assert rig.agent.ready is True


@FAST
@given(st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()))
def test_parse_json_raises_only_comfy_error(body: bytes) -> None:
    with contextlib.suppress(ComfyError):
        parse_json(body, "GET /x")


@FAST
@given(json_values | queue_like)
def test_queue_state_is_valid_or_comfy_error(data: Any) -> None:
    try:
        state = queue_state(data)
    except ComfyError:
        return
    assert state.running >= 0
    assert state.pending >= 0


@FAST
@given(json_values | prompt_like)
def test_prompt_counter_is_valid_or_comfy_error(data: Any) -> None:
    try:
        state = prompt_counter(data)
    except ComfyError:
        return
    assert type(state.depth) is int
    assert 0 <= state.running <= 1
    assert state.pending >= 0


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(json_values | queue_like)
def test_the_client_over_http_never_raises_anything_else(data: Any) -> None:
    stand_in = ComfyStandIn()
    try:
        stand_in.set_json("/queue", json.dumps(data))
        stand_in.set_json("/system_stats", json.dumps(data))
        client = ComfyClient(stand_in.url, 2.0)
        for call in (client.queue, client.system_stats):
            with contextlib.suppress(ComfyError):
                call()
    finally:
        stand_in.close()
