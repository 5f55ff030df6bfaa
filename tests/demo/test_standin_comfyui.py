"""The demo's stand-in ComfyUI speaks the recorded API shapes."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from demo.standin_comfyui import StandinComfyUI


@pytest.fixture
def comfy() -> Iterator[StandinComfyUI]:
    with StandinComfyUI(job_seconds=0.2) as server:
        yield server


def get(comfy: StandinComfyUI, path: str) -> Any:
    with urllib.request.urlopen(comfy.url + path, timeout=5) as response:  # noqa: S310 - loopback test server
        return json.loads(response.read())


def post(comfy: StandinComfyUI, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - loopback test server
        comfy.url + "/prompt", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


GRAPH = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "demo"}},
}


def test_idle_queue_and_system_stats_shapes(comfy: StandinComfyUI) -> None:
    assert get(comfy, "/queue") == {"queue_running": [], "queue_pending": []}
    assert get(comfy, "/system_stats")["system"]["comfyui_version"] == "0.8.0"
    assert get(comfy, "/api/queue") == get(comfy, "/queue")


def test_a_prompt_queues_runs_and_lands_in_history_with_an_image(comfy: StandinComfyUI) -> None:
    status, answer = post(comfy, {"prompt": GRAPH, "client_id": "t"})
    assert status == 200
    assert set(answer) == {"prompt_id", "number", "node_errors"}
    prompt_id = answer["prompt_id"]
    queue = get(comfy, "/queue")
    items = queue["queue_running"] + queue["queue_pending"]
    assert [item[1] for item in items] == [prompt_id]
    assert get(comfy, f"/history/{prompt_id}") == {}
    deadline = time.monotonic() + 5
    while not get(comfy, f"/history/{prompt_id}") and time.monotonic() < deadline:
        time.sleep(0.05)
    entry = get(comfy, f"/history/{prompt_id}")[prompt_id]
    assert entry["status"]["completed"] is True
    assert entry["status"]["status_str"] == "success"
    [image] = entry["outputs"]["2"]["images"]
    assert image["type"] == "output"
    with urllib.request.urlopen(f"{comfy.url}/view?filename={image['filename']}&type=output") as response:  # noqa: S310
        assert response.headers["Content-Type"] == "image/png"
        assert response.read().startswith(b"\x89PNG\r\n\x1a\n")
    assert get(comfy, "/queue") == {"queue_running": [], "queue_pending": []}


def test_bad_prompts_get_comfyui_errors(comfy: StandinComfyUI) -> None:
    status, answer = post(comfy, {"client_id": "x"})
    assert (status, answer["error"]["type"]) == (400, "no_prompt")
    status, answer = post(comfy, {"prompt": {}})
    assert (status, answer["error"]["type"]) == (400, "prompt_no_outputs")


def test_unknown_history_id_is_an_empty_object(comfy: StandinComfyUI) -> None:
    assert get(comfy, "/history/does-not-exist") == {}
