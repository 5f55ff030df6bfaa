"""The ComfyUI client against recorded answers, and against a ComfyUI that misbehaves."""

from __future__ import annotations

import socket

import pytest

from autostop_agent.comfyui import MAX_QUEUE_BYTES, ComfyClient, ComfyError
from tests.agent.helpers import ComfyStandIn, FakeClock, fixture_bytes, make_rig


def client(comfy: ComfyStandIn, timeout: float = 0.5) -> ComfyClient:
    return ComfyClient(comfy.url, timeout)


def test_recorded_answers(comfy: ComfyStandIn) -> None:
    c = client(comfy)
    assert c.queue().depth == 0
    comfy.busy()
    busy = c.queue()
    assert (busy.running, busy.pending) == (1, 4)
    assert c.system_stats()["system"]["comfyui_version"] == "0.8.0"


def test_every_route_is_also_under_api_prefix(comfy: ComfyStandIn) -> None:
    comfy.set_json("/api/queue", fixture_bytes("queue_busy.json"))
    assert ComfyClient(comfy.url + "/api", 0.5).queue().depth == 5


@pytest.mark.parametrize(
    ("body", "ctype", "status"),
    [
        (b"<!DOCTYPE html><html><body>ComfyUI</body></html>", "text/html", 200),
        (b"\x00\xff\xfegarbage", "application/octet-stream", 200),
        (b"500 Internal Server Error\n\nServer got itself in trouble", "text/plain", 500),
        (b'{"queue_running": 3}', "application/json", 200),
        (b'{"queue_running": "x", "queue_pending": []}', "application/json", 200),
        (b"[1, 2, 3]", "application/json", 200),
        (b"null", "application/json", 200),
        (b"", "application/json", 200),
        (b"Bad Gateway", "text/plain", 502),
    ],
)
def test_bad_queue_answers_raise_comfy_error(
    comfy: ComfyStandIn, body: bytes, ctype: str, status: int
) -> None:
    comfy.set_raw("/queue", body, ctype, status)
    with pytest.raises(ComfyError):
        client(comfy).queue()


def test_html_system_stats_is_not_readiness(comfy: ComfyStandIn) -> None:
    comfy.set_raw("/system_stats", b"<html>nginx welcome</html>", "text/html")
    with pytest.raises(ComfyError, match="not JSON"):
        client(comfy).system_stats()
    comfy.set_json("/system_stats", b'{"devices": []}')
    with pytest.raises(ComfyError, match="not a ComfyUI answer"):
        client(comfy).system_stats()


def test_dropped_connection_and_refused_port(comfy: ComfyStandIn) -> None:
    comfy.down = True
    with pytest.raises(ComfyError):
        client(comfy).queue()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        with pytest.raises(ComfyError, match="ConnectionRefused"):
            ComfyClient(f"http://127.0.0.1:{port}", 0.5).queue()


def test_slow_answer_times_out(comfy: ComfyStandIn) -> None:
    comfy.hang = True
    with pytest.raises(ComfyError, match=r"no complete answer within 0\.1 s"):
        client(comfy, timeout=0.1).queue()


def test_huge_queue_falls_back_to_prompt_counter(comfy: ComfyStandIn) -> None:
    comfy.set_json("/queue", b'{"queue_running": [], "queue_pending": []' + b" " * MAX_QUEUE_BYTES + b"}")
    comfy.set_json("/prompt", fixture_bytes("prompt_get_busy.json"))
    q = client(comfy).queue()
    assert (q.running, q.pending) == (1, 4)


def test_agent_survives_garbage_and_never_claims_readiness(comfy: ComfyStandIn, clock: FakeClock) -> None:
    rig = make_rig(comfy, clock)
    comfy.set_raw("/queue", b"<html>502 Bad Gateway</html>", "text/html")
    rig.run(120)
    assert rig.records()
    assert all(r["comfyui_ready"] is False for r in rig.records())
    assert all(r["queue_running"] == 0 for r in rig.records())
    comfy.idle()
    rig.run(2)
    assert rig.records()[-1]["comfyui_ready"] is True
