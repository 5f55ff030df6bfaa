"""The command-line client: Lambda calls through a fake invoker (or botocore's Stubber), ComfyUI answers
served from recorded fixtures by a local HTTP server, and a fake clock (nothing sleeps)."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from gpu_autostop_cli import client
from gpu_autostop_cli.client import BotoInvoker, ClientError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "comfyui"
OK_PROMPT_ID = "d679c91a-c7aa-4f30-82af-b8c2e3555f03"  # prompt_post_ok.json / history_prompt_id.json
FAILING_PROMPT_ID = "9e336449-ca94-4cd6-9fd8-ab154a62ff92"  # prompt_post_runtime_error.json
INTERRUPTED_ID = "742552c1-acca-4ba3-99f7-436fe4cadb05"  # history_interrupted.json


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def png(width: int = 2, height: int = 2) -> bytes:
    """A valid little PNG (no /view answer was recorded, so the tests make one)."""
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


# --- a ComfyUI that answers from fixtures -------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


def json_reply(data: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(data).encode())


@dataclass
class FakeComfyUI:
    """Routes: "POST /prompt", "GET /history/<id>", "GET /view" -> a list of replies (the last repeats)."""

    url: str = ""
    routes: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)

    def script(self, route: str, *replies: Reply) -> None:
        self.routes[route] = list(replies)

    def answer(self, method: str, path: str, body: bytes) -> Reply:
        self.requests.append((method, path, body))
        route = f"{method} {path.split('?')[0]}"
        replies = self.routes.get(route)
        if not replies:
            return Reply(404, b"404: Not Found", "text/plain")
        return replies.pop(0) if len(replies) > 1 else replies[0]

    def posted_prompts(self) -> list[dict[str, Any]]:
        return [
            json.loads(body) for method, path, body in self.requests if (method, path) == ("POST", "/prompt")
        ]

    def paths(self) -> list[str]:
        return [f"{method} {path}" for method, path, _ in self.requests]


@pytest.fixture
def comfy() -> Iterator[FakeComfyUI]:
    fake = FakeComfyUI()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            reply = fake.answer(self.command, self.path, self.rfile.read(length) if length else b"")
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def script_success(comfy: FakeComfyUI, pending_polls: int = 1) -> None:
    comfy.script("POST /prompt", json_reply(fixture("prompt_post_ok.json")))
    comfy.script(
        f"GET /history/{OK_PROMPT_ID}",
        *[json_reply(fixture("history_unknown_id.json"))] * pending_polls,
        json_reply(fixture("history_prompt_id.json")),
    )
    comfy.script("GET /view", Reply(200, png(), "image/png"))


# --- fake Lambda functions and clock ------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now_value = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.now_value

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(seconds)
        self.now_value += timedelta(seconds=seconds)


class FakeLambdas:
    """Answers per function name; a list is consumed in order (the last answer repeats)."""

    def __init__(self, **answers: Any) -> None:
        self.answers: dict[str, list[Any]] = {
            k: v if isinstance(v, list) else [v] for k, v in answers.items()
        }
        self.calls: list[tuple[str, dict[str, Any], float]] = []

    def __call__(self, function_name: str, payload: dict[str, Any], read_timeout_s: float) -> Any:
        self.calls.append((function_name, payload, read_timeout_s))
        action = function_name.rsplit("-", 1)[1]
        queue = self.answers[action]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


def start_answer(ready: bool = False, url: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "ok": True,
        "instance_id": "i-0abc",
        "state": "running" if ready else "pending",
        "ready": ready,
        "started": not ready,
        "instance_type": "g4dn.xlarge",
        "public_ip": "127.0.0.1" if ready else None,
        "comfyui_url": url if ready else None,
        "waited_s": 0.0,
        "timed_out": False,
        "retry_after_s": None if ready else 15,
        **extra,
    }


def status_answer(ready: bool, url: str | None, state: str = "running", **extra: Any) -> dict[str, Any]:
    return {
        "ok": True,
        "instance_id": "i-0abc",
        "state": state,
        "ready": ready,
        "ready_at": "2026-11-22T08:01:10Z" if ready else None,
        "public_ip": "127.0.0.1",
        "comfyui_url": url,
        "queue_depth": 0,
        "idle_minutes": 0.5,
        "running_since": "2026-11-22T08:00:03Z",
        "instance_type": "g4dn.xlarge",
        "agent": "current" if ready else "missing",
        **extra,
    }


def refused(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}, **extra}


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., Run]:
    def run(*argv: str, lambdas: FakeLambdas, clock: FakeClock | None = None) -> Run:
        out, err = io.StringIO(), io.StringIO()
        code = client.main(list(argv), invoker=lambdas, clock=clock or FakeClock(), stdout=out, stderr=err)
        return Run(code, out.getvalue(), err.getvalue())

    return run


# --- generate -----------------------------------------------------------------------------------


def test_generate_happy_path_starts_waits_queues_polls_and_downloads(
    comfy: FakeComfyUI, cli: Callable[..., Run], tmp_path: Path
) -> None:
    script_success(comfy, pending_polls=2)
    lambdas = FakeLambdas(
        start=start_answer(ready=False),
        status=[status_answer(False, None, state="pending"), status_answer(True, comfy.url)],
    )
    clock = FakeClock()
    out_dir = tmp_path / "images"

    result = cli(
        "generate",
        "--prompt",
        "a lighthouse at dusk",
        "--seed",
        "42",
        "--out",
        str(out_dir),
        lambdas=lambdas,
        clock=clock,
    )

    assert result.code == 0, result.err
    saved = out_dir / "fixture_00002_.png"
    assert result.out.strip() == str(saved)
    assert saved.read_bytes() == png()
    # start first (no wait in the Lambda), then status until ready
    assert lambdas.names() == ["gpu-autostop-start", "gpu-autostop-status", "gpu-autostop-status"]
    assert lambdas.calls[0][1] == {"wait": "none"}
    # the text went into the default graph
    (posted,) = comfy.posted_prompts()
    graph = posted["prompt"]
    assert graph["6"]["inputs"]["text"] == "a lighthouse at dusk"
    assert graph["3"]["inputs"]["seed"] == 42
    assert graph["4"]["inputs"]["ckpt_name"] == client.DEFAULT_CHECKPOINT
    assert posted["client_id"].startswith("gpu-autostop-cli-")
    assert comfy.paths()[1:] == [
        f"GET /history/{OK_PROMPT_ID}",
        f"GET /history/{OK_PROMPT_ID}",
        f"GET /history/{OK_PROMPT_ID}",
        "GET /view?filename=fixture_00002_.png&subfolder=&type=output",
    ]
    # bounded waits on the injected clock: two status polls, three history polls
    assert clock.slept == [client.READY_POLL_S] * 2 + [client.HISTORY_POLL_S] * 2
    assert "waiting for ComfyUI: instance pending" in result.err
    assert f"queued prompt {OK_PROMPT_ID}" in result.err


def test_generate_on_a_warm_instance_skips_status(
    comfy: FakeComfyUI, cli: Callable[..., Run], tmp_path: Path
) -> None:
    script_success(comfy, pending_polls=0)
    lambdas = FakeLambdas(start=start_answer(ready=True, url=comfy.url), status=AssertionError("no status"))

    result = cli("generate", "--prompt", "x", "--out", str(tmp_path), "--json", lambdas=lambdas)

    assert result.code == 0, result.err
    answer = json.loads(result.out)
    assert answer["ok"] is True
    (item,) = answer["results"]
    assert item["prompt_id"] == OK_PROMPT_ID
    assert item["files"] == [str(tmp_path / "fixture_00002_.png")]
    assert lambdas.names() == ["gpu-autostop-start"]


def test_generate_with_a_workflow_file_posts_it_unchanged(
    comfy: FakeComfyUI, cli: Callable[..., Run], tmp_path: Path
) -> None:
    script_success(comfy, pending_polls=0)
    request = fixture("prompt_post_ok_request.json")
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(request))  # a /prompt body is accepted as well as the bare graph
    lambdas = FakeLambdas(start=start_answer(ready=True, url=comfy.url), status=[])

    result = cli("generate", "--workflow", str(path), "--out", str(tmp_path / "o"), lambdas=lambdas)

    assert result.code == 0, result.err
    assert comfy.posted_prompts()[0]["prompt"] == request["prompt"]


def test_start_is_called_before_every_prompt_and_a_comfyui_failure_does_not_stop_the_rest(
    comfy: FakeComfyUI, cli: Callable[..., Run], tmp_path: Path
) -> None:
    script_success(comfy, pending_polls=0)
    comfy.script(
        "POST /prompt",
        json_reply(fixture("prompt_post_invalid_missing_model.json"), 400),
        json_reply(fixture("prompt_post_ok.json")),
    )
    lambdas = FakeLambdas(start=start_answer(ready=True, url=comfy.url), status=[])

    result = cli(
        "generate", "--prompt", "one", "--prompt", "two", "--out", str(tmp_path), "--json", lambdas=lambdas
    )

    assert result.code == 1
    assert lambdas.names() == ["gpu-autostop-start", "gpu-autostop-start"]
    first, second = json.loads(result.out)["results"]
    assert first["error"]["code"] == "ComfyUIInvalidPrompt"
    assert second["ok"] is True


def test_comfyui_url_override(comfy: FakeComfyUI, cli: Callable[..., Run], tmp_path: Path) -> None:
    script_success(comfy, pending_polls=0)
    lambdas = FakeLambdas(start=start_answer(ready=True, url="http://203.0.113.9:8188"), status=[])

    result = cli(
        "generate", "--prompt", "x", "--comfyui-url", comfy.url + "/", "--out", str(tmp_path), lambdas=lambdas
    )

    assert result.code == 0, result.err
    assert comfy.posted_prompts()


def test_partial_node_errors_are_warnings(
    comfy: FakeComfyUI, cli: Callable[..., Run], tmp_path: Path
) -> None:
    script_success(comfy, pending_polls=0)
    partial = fixture("prompt_post_partial_node_errors.json")
    comfy.script("POST /prompt", json_reply(partial))
    done = {partial["prompt_id"]: fixture("history_prompt_id.json")[OK_PROMPT_ID]}
    comfy.script(f"GET /history/{partial['prompt_id']}", json_reply(done))
    lambdas = FakeLambdas(start=start_answer(ready=True, url=comfy.url), status=[])

    result = cli("generate", "--prompt", "x", "--out", str(tmp_path), "--json", lambdas=lambdas)

    assert result.code == 0, result.err
    warning = "node 3 (EmptyImage): Value -5 smaller than min of 1: width"
    assert f"warning: ComfyUI skipped an output: {warning}" in result.err
    assert json.loads(result.out)["results"][0]["warnings"] == [warning]


# --- failures -----------------------------------------------------------------------------------


def test_no_capacity_says_when_to_retry_and_exits_75(comfy: FakeComfyUI, cli: Callable[..., Run]) -> None:
    lambdas = FakeLambdas(
        start=refused(
            "NoCapacity",
            "AWS has no capacity for g4dn.xlarge in this zone right now; try again in 5 minutes",
            instance_id="i-0abc",
            state="stopped",
            retry_after_s=300,
        )
    )

    result = cli("generate", "--prompt", "x", lambdas=lambdas)

    assert result.code == client.EXIT_RETRY_LATER == 75
    assert "error NoCapacity: AWS has no capacity for g4dn.xlarge" in result.err
    assert "retry in 300 s" in result.err
    assert "fallback_instance_types" in result.err
    assert comfy.requests == []


def test_budget_exceeded_is_a_plain_failure_with_a_hint(cli: Callable[..., Run]) -> None:
    lambdas = FakeLambdas(start=refused("BudgetExceeded", "the $50 monthly budget is spent"))

    result = cli("start", "--json", lambdas=lambdas)

    assert result.code == 1
    answer = json.loads(result.out)
    assert answer["ok"] is False
    assert answer["error"]["code"] == "BudgetExceeded"
    assert "make reset-cap" in answer["error"]["hint"]  # a tripped cap does not pass with the month
    assert "error BudgetExceeded: the $50 monthly budget is spent" in result.err


def test_node_errors_are_summarised_per_node(
    comfy: FakeComfyUI, cli: Callable[..., Run], tmp_path: Path
) -> None:
    comfy.script("POST /prompt", json_reply(fixture("prompt_post_invalid_missing_model.json"), 400))
    lambdas = FakeLambdas(start=start_answer(ready=True, url=comfy.url))

    result = cli("generate", "--prompt", "x", "--out", str(tmp_path), "--json", lambdas=lambdas)

    assert result.code == 1
    (item,) = json.loads(result.out)["results"]
    error = item["error"]
    assert error["code"] == "ComfyUIInvalidPrompt"
    assert error["message"] == (
        "ComfyUI rejected the workflow: Prompt outputs failed validation: node 4 (CheckpointLoaderSimple): "
        "Value not in list: ckpt_name: 'v1-5-pruned-emaonly.safetensors' not in []"
    )
    assert error["details"]["type"] == "prompt_outputs_failed_validation"
    assert "checkpoint is not installed" in error["hint"]


def test_several_invalid_inputs_of_one_node_are_listed() -> None:
    error = client.prompt_rejection(400, fixture("prompt_post_invalid.json"))
    assert error.message == (
        "ComfyUI rejected the workflow: Prompt outputs failed validation: node 1 (EmptyImage): "
        "Failed to convert an input value to a INT value: width, abc, "
        "invalid literal for int() with base 10: 'abc'; Required input is missing: color"
    )
    unknown = client.prompt_rejection(400, fixture("prompt_post_invalid_unknown_node.json"))
    assert unknown.message == (
        "ComfyUI rejected the workflow: Cannot execute because node NoSuchNode does not exist. (Node ID '#1')"
    )


def test_execution_error_names_the_node(comfy: FakeComfyUI, cli: Callable[..., Run], tmp_path: Path) -> None:
    comfy.script("POST /prompt", json_reply(fixture("prompt_post_runtime_error.json")))
    comfy.script(f"GET /history/{FAILING_PROMPT_ID}", json_reply(fixture("history_runtime_error.json")))
    lambdas = FakeLambdas(start=start_answer(ready=True, url=comfy.url))

    result = cli("generate", "--prompt", "x", "--out", str(tmp_path), lambdas=lambdas)

    assert result.code == 1
    assert (
        "error ComfyUIExecutionError: node 2 (SaveImage) failed: Exception: "
        "**** ERROR: Saving image outside the output folder is not allowed." in result.err
    )
    assert not any(path.startswith("GET /view") for path in comfy.paths())


def test_interrupted_prompt() -> None:
    entry = fixture("history_interrupted.json")[INTERRUPTED_ID]
    error = client.history_failure(entry)
    assert error is not None
    assert error.code == "ComfyUIInterrupted"
    assert error.message == "the prompt was interrupted at node 3 (ImageScale)"
    assert client.history_failure(fixture("history_prompt_id.json")[OK_PROMPT_ID]) is None


def test_ready_timeout_is_bounded(comfy: FakeComfyUI, cli: Callable[..., Run]) -> None:
    lambdas = FakeLambdas(start=start_answer(), status=status_answer(False, comfy.url))
    clock = FakeClock()

    result = cli("generate", "--prompt", "x", "--ready-timeout", "25", lambdas=lambdas, clock=clock)

    assert result.code == 1
    assert "error ReadyTimeout: ComfyUI was not ready after 25 s (instance running)" in result.err
    assert sum(clock.slept) == 25
    assert lambdas.names().count("gpu-autostop-status") == 3  # after 10, 20 and 25 s
    assert comfy.requests == []


def test_generation_timeout_is_bounded(comfy: FakeComfyUI, cli: Callable[..., Run], tmp_path: Path) -> None:
    comfy.script("POST /prompt", json_reply(fixture("prompt_post_ok.json")))
    comfy.script(f"GET /history/{OK_PROMPT_ID}", json_reply({}))
    lambdas = FakeLambdas(start=start_answer(ready=True, url=comfy.url))
    clock = FakeClock()

    result = cli(
        "generate", "--prompt", "x", "--timeout", "9", "--out", str(tmp_path), lambdas=lambdas, clock=clock
    )

    assert result.code == 1
    assert f"error GenerationTimeout: prompt {OK_PROMPT_ID} did not finish within 9 s" in result.err
    assert sum(clock.slept) == 9
    assert comfy.paths().count(f"GET /history/{OK_PROMPT_ID}") == 6  # at 0, 2, 4, 6, 8 and 9 s


def test_a_failing_status_call_is_retried_within_the_deadline(
    comfy: FakeComfyUI, cli: Callable[..., Run], tmp_path: Path
) -> None:
    script_success(comfy, pending_polls=0)
    lambdas = FakeLambdas(
        start=start_answer(),
        status=[ClientError("ControlPlaneError", "Rate exceeded"), status_answer(True, comfy.url)],
    )

    result = cli("generate", "--prompt", "x", "--out", str(tmp_path), lambdas=lambdas)

    assert result.code == 0, result.err
    assert "status failed (ControlPlaneError: Rate exceeded); retrying" in result.err


@pytest.mark.parametrize(
    ("state", "code"),
    [("stopped", "InstanceStopped"), ("stopping", "InstanceStopped"), ("terminated", "InstanceGone")],
)
def test_instance_leaving_while_we_wait(cli: Callable[..., Run], state: str, code: str) -> None:
    lambdas = FakeLambdas(start=start_answer(), status=status_answer(False, None, state=state))
    result = cli("generate", "--prompt", "x", lambdas=lambdas)
    assert result.code in (1, 75)
    assert f"error {code}:" in result.err


def test_ready_without_a_url(cli: Callable[..., Run]) -> None:
    lambdas = FakeLambdas(start=start_answer(), status=status_answer(True, None))
    result = cli("generate", "--prompt", "x", lambdas=lambdas)
    assert result.code == 1
    assert "error NoComfyUIUrl" in result.err
    assert "--comfyui-url" in result.err


def test_comfyui_unreachable(cli: Callable[..., Run]) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    lambdas = FakeLambdas(start=start_answer(ready=True, url=closed))

    result = cli("generate", "--prompt", "x", lambdas=lambdas)

    assert result.code == 1
    assert f"error ComfyUIUnreachable: POST {closed}/prompt failed" in result.err


def test_no_image_output(comfy: FakeComfyUI, cli: Callable[..., Run], tmp_path: Path) -> None:
    entry = fixture("history_prompt_id.json")
    entry[OK_PROMPT_ID]["outputs"] = {}
    comfy.script("POST /prompt", json_reply(fixture("prompt_post_ok.json")))
    comfy.script(f"GET /history/{OK_PROMPT_ID}", json_reply(entry))
    lambdas = FakeLambdas(start=start_answer(ready=True, url=comfy.url))

    result = cli("generate", "--prompt", "x", "--out", str(tmp_path), lambdas=lambdas)

    assert result.code == 1
    assert "error NoImage" in result.err


def test_downloaded_names_stay_inside_the_output_directory(comfy: FakeComfyUI, tmp_path: Path) -> None:
    comfy.script("GET /view", Reply(200, png(), "image/png"))
    c = client.Client(invoke=FakeLambdas(), clock=FakeClock())
    image = {"filename": "../../escape.png", "subfolder": "x", "type": "output"}
    first = c.download(comfy.url, image, tmp_path / "out")
    second = c.download(comfy.url, image, tmp_path / "out")
    assert first == tmp_path / "out" / "escape.png"
    assert second == tmp_path / "out" / "escape-1.png"
    assert comfy.paths()[0] == "GET /view?filename=..%2F..%2Fescape.png&subfolder=x&type=output"


# --- bad arguments and bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["launch"],
        ["generate"],
        ["generate", "--prompt", "x", "--workflow", "g.json"],
        ["generate", "--prompt", "x", "--timeout", "-5"],
        ["generate", "--prompt", "x", "--width", "wide"],
        ["start", "--wait", "forever"],
    ],
)
def test_bad_arguments_exit_2_without_calling_anything(cli: Callable[..., Run], argv: list[str]) -> None:
    lambdas = FakeLambdas()
    result = cli(*argv, lambdas=lambdas)
    assert result.code == 2
    assert lambdas.calls == []


def test_ui_format_workflow_is_refused_before_starting(cli: Callable[..., Run], tmp_path: Path) -> None:
    path = tmp_path / "ui.json"
    path.write_text(json.dumps({"nodes": [{"id": 1, "type": "KSampler"}], "links": []}))
    lambdas = FakeLambdas()

    result = cli("generate", "--workflow", str(path), lambdas=lambdas)

    assert result.code == 1
    assert "error InvalidWorkflow:" in result.err
    assert "Export (API)" in result.err
    assert lambdas.calls == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not valid JSON"),
        ("[]", "must be a non-empty JSON object of nodes"),
        ('{"1": {"inputs": {}}}', "node(s) 1 lack a class_type"),
    ],
)
def test_bad_workflow_files(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "g.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ClientError) as caught:
        client.load_workflow(path)
    assert caught.value.code == "InvalidWorkflow"
    assert message in caught.value.message


def test_empty_prompt_is_refused() -> None:
    with pytest.raises(ClientError, match="the prompt is empty"):
        client.txt2img("   ")


# --- start / status / stop ----------------------------------------------------------------------


def test_start_prints_a_readable_summary(cli: Callable[..., Run]) -> None:
    lambdas = FakeLambdas(start=start_answer())
    result = cli("start", lambdas=lambdas)
    assert result.code == 0
    assert result.out.splitlines() == [
        "instance i-0abc: started (g4dn.xlarge)",
        "state: pending  ready: no",
        "not ready yet: check again in 15 s (`status`)",
    ]
    assert lambdas.calls == [("gpu-autostop-start", {"wait": "none"}, 60.0)]


def test_start_with_wait_gives_the_lambda_time(cli: Callable[..., Run]) -> None:
    lambdas = FakeLambdas(start=start_answer(ready=True, url="http://203.0.113.9:8188"))
    result = cli("start", "--wait", "ready", "--timeout", "240", lambdas=lambdas)
    assert result.code == 0
    assert lambdas.calls == [("gpu-autostop-start", {"wait": "ready", "timeout_s": 240.0}, 300.0)]
    assert "ComfyUI: http://203.0.113.9:8188" in result.out


def test_status_readable_and_json(cli: Callable[..., Run]) -> None:
    answer = status_answer(True, "http://203.0.113.9:8188")
    readable = cli("status", lambdas=FakeLambdas(status=answer))
    assert readable.code == 0
    assert readable.out.splitlines() == [
        "instance i-0abc (g4dn.xlarge): running",
        "ready: yes (since 2026-11-22T08:01:10Z)",
        "ComfyUI: http://203.0.113.9:8188",
        "running since: 2026-11-22T08:00:03Z",
        "queue depth: 0",
        "idle minutes: 0.5",
        "agent: current",
    ]
    as_json = cli("--json", "status", lambdas=FakeLambdas(status=answer))
    assert json.loads(as_json.out) == answer


def test_stop_force_with_reason(cli: Callable[..., Run]) -> None:
    answer = {
        "ok": True,
        "instance_id": "i-0abc",
        "stopped": True,
        "decision": "forced",
        "reason": "forced stop: costs jumped",
        "idle_minutes": None,
        "agent_silent": False,
        "session_hours": 1.5,
        "session_cost_usd": 0.79,
    }
    lambdas = FakeLambdas(stop=answer)
    result = cli("stop", "--force", "--reason", "costs jumped", lambdas=lambdas)
    assert result.code == 0
    assert lambdas.calls[0][:2] == ("gpu-autostop-stop", {"force": True, "reason": "costs jumped"})
    assert "stopped (forced: forced stop: costs jumped)" in result.out
    assert "about $0.79" in result.out


def test_stop_without_force_asks_for_an_idle_check(cli: Callable[..., Run]) -> None:
    answer = {
        "ok": True,
        "instance_id": "i-0abc",
        "stopped": False,
        "decision": "busy",
        "reason": "queue not empty",
    }
    lambdas = FakeLambdas(stop=answer)
    result = cli("stop", lambdas=lambdas)
    assert result.code == 0
    assert lambdas.calls[0][1] == {}
    assert "not stopped (busy: queue not empty)" in result.out


def test_name_from_environment_and_option(cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPU_AUTOSTOP_NAME", "team-gpu")
    lambdas = FakeLambdas(status=status_answer(False, None))
    cli("status", lambdas=lambdas)
    cli("status", "--name", "other", lambdas=lambdas)
    assert lambdas.names() == ["team-gpu-status", "other-status"]


def test_function_names_follow_the_terraform_naming() -> None:
    assert [client.function_name("gpu-autostop", a) for a in client.ACTIONS] == [
        "gpu-autostop-start",
        "gpu-autostop-status",
        "gpu-autostop-stop",
    ]
    with pytest.raises(ValueError, match="unknown action"):
        client.function_name("gpu-autostop", "reboot")


def test_an_answer_that_is_not_an_object_is_an_error(cli: Callable[..., Run]) -> None:
    result = cli("status", lambdas=FakeLambdas(status=[None]))
    assert result.code == 1
    assert "error ControlPlaneError: gpu-autostop-status answered None" in result.err


# --- the boto3 invoker (botocore Stubber: no network, no Docker) --------------------------------


def _stubbed(region: str | None, read_timeout_s: float) -> tuple[Any, Stubber]:
    lam = boto3.client(
        "lambda",
        region_name=region or "us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return lam, Stubber(lam)


def _payload(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_boto_invoker_sends_request_response_and_decodes_the_answer() -> None:
    lam, stub = _stubbed("eu-west-1", 60)
    stub.add_response(
        "invoke",
        {"StatusCode": 200, "Payload": _payload(b'{"ok": true, "state": "stopped"}')},
        {"FunctionName": "gpu-autostop-status", "InvocationType": "RequestResponse", "Payload": b"{}"},
    )
    seen: list[tuple[str | None, float]] = []

    def factory(region: str | None, timeout: float) -> Any:
        seen.append((region, timeout))
        return lam

    with stub:
        answer = BotoInvoker(region="eu-west-1", client_factory=factory)("gpu-autostop-status", {}, 30.0)
    assert answer == {"ok": True, "state": "stopped"}
    assert seen == [("eu-west-1", 30.0)]
    stub.assert_no_pending_responses()


def test_boto_invoker_turns_a_function_error_into_a_client_error() -> None:
    lam, stub = _stubbed(None, 60)
    body = b'{"errorMessage": "Task timed out after 30.03 seconds", "errorType": "Sandbox.Timedout"}'
    stub.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": _payload(body)})
    with stub, pytest.raises(ClientError) as caught:
        BotoInvoker(client_factory=lambda r, t: lam)("gpu-autostop-start", {"wait": "none"}, 60.0)
    assert caught.value.code == "ControlPlaneError"
    assert caught.value.message == (
        "gpu-autostop-start failed: Task timed out after 30.03 seconds (see its CloudWatch logs)"
    )


def test_boto_invoker_explains_a_missing_function() -> None:
    lam, stub = _stubbed(None, 60)
    stub.add_client_error(
        "invoke",
        service_error_code="ResourceNotFoundException",
        service_message="Function not found: arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-x",
        http_status_code=404,
    )
    with stub, pytest.raises(ClientError) as caught:
        BotoInvoker(client_factory=lambda r, t: lam)("gpu-autostop-start", {}, 60.0)
    assert caught.value.message.startswith(
        "could not invoke gpu-autostop-start: ResourceNotFoundException: Function not found"
    )
    assert "--name" in (caught.value.hint or "")


def test_boto_invoker_reports_a_missing_region_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(ClientError) as caught:
        BotoInvoker()("gpu-autostop-status", {}, 30.0)
    assert caught.value.code == "ControlPlaneError"
    assert caught.value.message.startswith("could not invoke gpu-autostop-status: ")


# --- the default graph and the package boundary -------------------------------------------------


def _shape(graph: dict[str, Any]) -> dict[str, Any]:
    """Class types and links: what must match the standard graph ComfyUI validated."""
    return {
        node_id: (node["class_type"], {k: v for k, v in node["inputs"].items() if isinstance(v, list)})
        for node_id, node in graph.items()
    }


def test_default_graph_is_the_standard_txt2img_graph_comfyui_validated() -> None:
    recorded = fixture("prompt_post_invalid_missing_model_request.json")["prompt"]
    graph = client.txt2img(
        "a cat", negative="blurry", seed=7, width=640, height=384, steps=12, checkpoint="m.ckpt"
    )
    assert _shape(graph) == _shape(recorded)
    assert graph["6"]["inputs"]["text"] == "a cat"
    assert graph["7"]["inputs"]["text"] == "blurry"
    assert graph["3"]["inputs"]["seed"] == 7
    assert graph["3"]["inputs"]["steps"] == 12
    assert (graph["5"]["inputs"]["width"], graph["5"]["inputs"]["height"]) == (640, 384)
    assert graph["4"]["inputs"]["ckpt_name"] == "m.ckpt"
    assert client.default_graph()["6"]["inputs"]["text"] == ""  # a fresh copy every time


def test_random_seed_by_default() -> None:
    assert client.txt2img("x", rng=lambda: 123)["3"]["inputs"]["seed"] == 123


def test_handlers_do_not_import_the_client() -> None:
    code = (
        "import sys\n"
        "import autostop.handlers.start, autostop.handlers.status, autostop.handlers.stop\n"
        "assert 'gpu_autostop_cli.client' not in sys.modules, 'a handler imports the CLI'\n"
    )
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_is_the_installed_gpu_autostop_command() -> None:
    """The Makefile installs the package into .venv: one command, every operator action in its help."""
    command = Path(sys.executable).parent / "gpu-autostop"
    done = subprocess.run([str(command), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    for action in ("start", "status", "stop", "generate", "emergency-stop", "cap"):
        assert action in done.stdout
    cap = subprocess.run([str(command), "cap", "--help"], capture_output=True, text=True, check=False)
    assert cap.returncode == 0, cap.stderr
    assert "{status,reset}" in cap.stdout
