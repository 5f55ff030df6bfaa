"""Command-line client for people without n8n: start, status, stop and generate.

    gpu-autostop start [--wait none|running|ready] [--timeout S]
    gpu-autostop status
    gpu-autostop stop [--force --reason TEXT]
    gpu-autostop generate --prompt TEXT [--prompt TEXT ...] [--out DIR]
    gpu-autostop generate --workflow graph_api.json [--out DIR]

It invokes the deployed Lambda functions (``<name>-start``, ``<name>-status``,
``<name>-stop``; ``--name`` or ``GPU_AUTOSTOP_NAME``, default ``gpu-autostop``) with
the standard AWS credential chain and region, and for ``generate`` does what the n8n
workflow does: start (before every prompt, so a stop never races the request), wait
until ComfyUI is ready (bounded), POST /prompt, poll /history/{id} (bounded), and
download the images through /view. Progress goes to stderr, results to stdout
(``--json`` for machine-readable output).

Exit status: 0 done; 1 failed; 2 bad arguments; 75 (EX_TEMPFAIL) failed but worth
retrying later (no capacity, instance stopping): the message says when.

This module is not used by the Lambda handlers (it is never imported on their path).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TextIO

from autostop.cap import BUDGET_EXCEEDED_ADVICE
from autostop.clock import Clock, SystemClock

DEFAULT_NAME = "gpu-autostop"
NAME_ENV = "GPU_AUTOSTOP_NAME"
ACTIONS = ("start", "status", "stop")
DEFAULT_CHECKPOINT = "v1-5-pruned-emaonly.safetensors"
#: Node ids in the shipped txt2img graph (cli/gpu_autostop_cli/workflows/txt2img.json).
TXT2IMG_NODES = {"sampler": "3", "checkpoint": "4", "latent": "5", "positive": "6", "negative": "7"}
READY_TIMEOUT_S = 600.0
READY_POLL_S = 10.0
GENERATE_TIMEOUT_S = 600.0
HISTORY_POLL_S = 2.0
HTTP_TIMEOUT_S = 30.0
#: The start function answers at once with wait=none; with a wait it may run up to 600 s.
LAMBDA_READ_MARGIN_S = 60.0
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_RETRY_LATER = 0, 1, 2, 75
GONE_STATES = ("shutting-down", "terminated")
#: What a failure means and what to do, by error code (the n8n workflows use the same codes).
HINTS = {
    "NoCapacity": "AWS has no GPU capacity in the zone right now; try again later "
    "(or set fallback_instance_types in Terraform).",
    "InstanceStopping": "the instance is still stopping; try again shortly.",
    "SpotInterrupted": "AWS will not start the Spot Instance now (interrupted: only EC2 restarts it "
    "when Spot capacity returns); try again later.",
    "BudgetExceeded": BUDGET_EXCEEDED_ADVICE + ".",
    "InstanceGone": "the instance was terminated; redeploy with `make deploy`.",
    "InstanceStopped": "the instance stopped while we waited for it; run the command again.",
    "ControlPlaneError": "check your AWS credentials, region and --name (the Terraform output `n8n`).",
    "ReadyTimeout": "the instance did not report ComfyUI ready in time; check `status` and the agent "
    "(`journalctl -u gpu-autostop-agent` on the instance).",
    "NoComfyUIUrl": "the instance has no public IP; pass --comfyui-url to reach ComfyUI another way.",
    "ComfyUIUnreachable": "ComfyUI did not answer; check the security group allows your address.",
    "ComfyUIInvalidPrompt": "ComfyUI rejected the workflow; fix the nodes named above "
    "(a missing model means the checkpoint is not installed on the instance).",
    "ComfyUIExecutionError": "the workflow failed while running on ComfyUI; see the node and message above.",
    "ComfyUIInterrupted": "the prompt was interrupted on ComfyUI (cancelled, or the queue was cleared).",
    "GenerationTimeout": "ComfyUI did not finish in time; raise --timeout or check the queue.",
    "NoImage": "the workflow finished without an image output; does it have a SaveImage node?",
    "InvalidWorkflow": "pass a ComfyUI API-format graph (in ComfyUI: Workflow > Export (API)).",
}


class ClientError(Exception):
    """A failure with a stable code, a clear message and, where it helps, when to retry."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retry_after_s: float | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s
        self.details = details

    @property
    def hint(self) -> str | None:
        return HINTS.get(self.code)

    @property
    def exit_code(self) -> int:
        return EXIT_RETRY_LATER if self.retry_after_s else EXIT_FAILED

    def as_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            error["hint"] = self.hint
        if self.retry_after_s:
            error["retry_after_s"] = self.retry_after_s
        if self.details is not None:
            error["details"] = self.details
        return {"ok": False, "error": error}

    def describe(self) -> str:
        text = f"error {self.code}: {self.message}"
        if self.retry_after_s:
            text += f"\nretry in {self.retry_after_s:.0f} s"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


# --- transports (injected, so tests need neither AWS nor a sleeping clock) ----------------------


class LambdaInvoker(Protocol):
    def __call__(self, function_name: str, payload: dict[str, Any], read_timeout_s: float) -> Any: ...


def function_name(prefix: str, action: str) -> str:
    """``<name>-start|status|stop``: the Terraform naming of the functions."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    return f"{prefix}-{action}"


def _boto_lambda(region: str | None, read_timeout_s: float) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    config = BotoConfig(
        connect_timeout=10,
        read_timeout=int(read_timeout_s),
        retries={"mode": "standard", "max_attempts": 3},
    )
    return boto3.client("lambda", region_name=region, config=config)


@dataclass
class BotoInvoker:
    """Invoke a Lambda function synchronously with boto3 (client made at call time)."""

    region: str | None = None
    client_factory: Callable[[str | None, float], Any] = _boto_lambda

    def __call__(self, function_name: str, payload: dict[str, Any], read_timeout_s: float) -> Any:
        from botocore.exceptions import BotoCoreError
        from botocore.exceptions import ClientError as BotoClientError

        try:
            client = self.client_factory(self.region, read_timeout_s)
            response = client.invoke(
                FunctionName=function_name,
                InvocationType="RequestResponse",
                Payload=json.dumps(payload).encode(),
            )
            raw = response["Payload"].read()
        except BotoClientError as exc:
            error = exc.response.get("Error", {})
            code, text = error.get("Code", "Error"), error.get("Message", str(exc))
            raise ClientError(
                "ControlPlaneError", f"could not invoke {function_name}: {code}: {text}"
            ) from exc
        except (BotoCoreError, ValueError) as exc:  # ValueError: e.g. an empty region makes a bad endpoint
            raise ClientError("ControlPlaneError", f"could not invoke {function_name}: {exc}") from exc
        try:
            answer = json.loads(raw or b"null")
        except ValueError as exc:
            raise ClientError(
                "ControlPlaneError", f"{function_name} answered with non-JSON: {raw[:200]!r}"
            ) from exc
        if response.get("FunctionError"):
            message = answer.get("errorMessage") if isinstance(answer, dict) else None
            raise ClientError(
                "ControlPlaneError",
                f"{function_name} failed: {message or response['FunctionError']} (see its CloudWatch logs)",
            )
        return answer


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    content_type: str = ""

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Transport(Protocol):
    def __call__(self, method: str, url: str, body: bytes | None, timeout_s: float) -> HttpResponse: ...


def urllib_transport(method: str, url: str, body: bytes | None, timeout_s: float) -> HttpResponse:
    """HTTP with urllib. Non-2xx answers are returned, not raised; no answer raises ComfyUIUnreachable."""
    if not url.startswith(("http://", "https://")):
        raise ClientError("ComfyUIUnreachable", f"not an http(s) URL: {url!r}")
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:  # noqa: S310
            return HttpResponse(reply.status, reply.read(), reply.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as exc:
        return HttpResponse(exc.code, exc.read(), exc.headers.get("Content-Type", "") if exc.headers else "")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClientError("ComfyUIUnreachable", f"{method} {url} failed: {reason}") from exc


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- ComfyUI graphs -----------------------------------------------------------------------------


def default_graph() -> dict[str, Any]:
    """The shipped txt2img API-format graph (SD 1.5 style: checkpoint, prompts, KSampler, SaveImage)."""
    text = resources.files("gpu_autostop_cli").joinpath("workflows/txt2img.json").read_text(encoding="utf-8")
    graph: dict[str, Any] = json.loads(text)
    return graph


def txt2img(
    prompt: str,
    *,
    negative: str = "",
    seed: int | None = None,
    width: int | None = None,
    height: int | None = None,
    steps: int | None = None,
    checkpoint: str | None = None,
    rng: Callable[[], int] | None = None,
) -> dict[str, Any]:
    """Fill the default graph. A random seed by default (ComfyUI caches an identical graph)."""
    if not prompt.strip():
        raise ClientError("InvalidWorkflow", "the prompt is empty")
    graph = default_graph()
    ids = TXT2IMG_NODES
    graph[ids["positive"]]["inputs"]["text"] = prompt
    graph[ids["negative"]]["inputs"]["text"] = negative
    sampler = graph[ids["sampler"]]["inputs"]
    sampler["seed"] = seed if seed is not None else (rng or (lambda: random.randrange(2**32)))()  # noqa: S311
    if steps is not None:
        sampler["steps"] = steps
    latent = graph[ids["latent"]]["inputs"]
    if width is not None:
        latent["width"] = width
    if height is not None:
        latent["height"] = height
    if checkpoint:
        graph[ids["checkpoint"]]["inputs"]["ckpt_name"] = checkpoint
    return graph


def check_api_graph(graph: Any, source: str = "workflow") -> dict[str, Any]:
    """Accept a ComfyUI API-format graph (``{"id": {"class_type", "inputs"}}``) or a /prompt body."""
    if isinstance(graph, dict) and isinstance(graph.get("prompt"), dict):
        graph = graph["prompt"]  # the body one would POST to /prompt
    if isinstance(graph, dict) and isinstance(graph.get("nodes"), list) and "links" in graph:
        raise ClientError(
            "InvalidWorkflow",
            f"{source} is in ComfyUI's editor (UI) format; export it with Workflow > Export (API)",
        )
    if not isinstance(graph, dict) or not graph:
        raise ClientError("InvalidWorkflow", f"{source} must be a non-empty JSON object of nodes")
    bad = [
        str(key)
        for key, node in graph.items()
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str)
    ]
    if bad:
        raise ClientError(
            "InvalidWorkflow",
            f"{source}: node(s) {', '.join(bad[:5])} lack a class_type; not an API-format graph",
        )
    return graph


def load_workflow(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClientError("InvalidWorkflow", f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ClientError("InvalidWorkflow", f"{path} is not valid JSON: {exc}") from exc
    return check_api_graph(data, str(path))


def summarize_node_errors(node_errors: Any, limit: int = 5) -> list[str]:
    """One line per failing node: ``node 4 (CheckpointLoaderSimple): Value not in list: ckpt_name: ...``."""
    lines: list[str] = []
    if not isinstance(node_errors, dict):
        return lines
    for node_id, entry in node_errors.items():
        if not isinstance(entry, dict):
            continue
        messages = []
        for error in entry.get("errors") or []:
            if isinstance(error, dict):
                text = str(error.get("message", "error"))
                if error.get("details"):
                    text += f": {error['details']}"
                messages.append(text)
        lines.append(f"node {node_id} ({entry.get('class_type', '?')}): {'; '.join(messages) or 'invalid'}")
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more node(s)"]
    return lines


def prompt_rejection(status: int, body: Any) -> ClientError:
    """The error for a POST /prompt that ComfyUI refused."""
    if status == 400 and isinstance(body, dict):
        error = _obj(body.get("error"))
        nodes = summarize_node_errors(body.get("node_errors"))
        text = str(error.get("message") or "invalid prompt")
        if error.get("details"):
            text += f" ({error['details']})"
        if nodes:
            text += ": " + " | ".join(nodes)
        return ClientError(
            "ComfyUIInvalidPrompt",
            f"ComfyUI rejected the workflow: {text}",
            details={"type": error.get("type"), "node_errors": nodes},
        )
    return ClientError("ComfyUIUnreachable", f"POST /prompt answered HTTP {status}")


def history_failure(entry: dict[str, Any]) -> ClientError | None:
    """The error recorded in a /history entry, or None when it did not fail."""
    status = _obj(entry.get("status"))
    if status.get("status_str") != "error":
        return None
    for kind, data in reversed(status.get("messages") or []):
        if kind == "execution_error" and isinstance(data, dict):
            message = str(data.get("exception_message", "")).strip().splitlines()
            return ClientError(
                "ComfyUIExecutionError",
                f"node {data.get('node_id')} ({data.get('node_type')}) failed: "
                f"{data.get('exception_type', 'Exception')}: {message[0] if message else 'no message'}",
                details={"node_id": data.get("node_id"), "node_type": data.get("node_type")},
            )
        if kind == "execution_interrupted" and isinstance(data, dict):
            return ClientError(
                "ComfyUIInterrupted",
                f"the prompt was interrupted at node {data.get('node_id')} ({data.get('node_type')})",
            )
    return ClientError("ComfyUIExecutionError", "ComfyUI reports the prompt failed (no details)")


def output_images(entry: dict[str, Any]) -> list[dict[str, str]]:
    """Every image of a finished /history entry, saved outputs first (PreviewImage gives 'temp')."""
    images: list[dict[str, str]] = []
    outputs = _obj(entry.get("outputs"))
    for node_output in outputs.values():
        for image in (node_output or {}).get("images") or []:
            if isinstance(image, dict) and image.get("filename"):
                images.append(
                    {
                        "filename": str(image["filename"]),
                        "subfolder": str(image.get("subfolder") or ""),
                        "type": str(image.get("type") or "output"),
                    }
                )
    return sorted(images, key=lambda image: image["type"] != "output")


def view_url(base: str, image: dict[str, str]) -> str:
    query = urllib.parse.urlencode(
        {"filename": image["filename"], "subfolder": image["subfolder"], "type": image["type"]}
    )
    return f"{base}/view?{query}"


def _safe_path(out_dir: Path, filename: str) -> Path:
    """A path inside out_dir for a server-chosen name (no traversal, no overwrite)."""
    name = Path(filename.replace("\\", "/")).name or "image.png"
    path = out_dir / name
    stem, suffix, n = path.stem, path.suffix, 1
    while path.exists():
        path = out_dir / f"{stem}-{n}{suffix}"
        n += 1
    return path


# --- the client ---------------------------------------------------------------------------------


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class GenerateResult:
    prompt_id: str
    files: list[str]
    images: list[dict[str, str]]
    warnings: list[str] = field(default_factory=list)


@dataclass
class Client:
    """The control-plane calls and the ComfyUI round trip, with every wait bounded."""

    name: str = DEFAULT_NAME
    invoke: LambdaInvoker = field(default_factory=BotoInvoker)
    http: Transport = urllib_transport
    clock: Clock = field(default_factory=SystemClock)
    progress: Callable[[str], None] = _stderr
    comfyui_url: str | None = None
    client_id: str = field(default_factory=lambda: f"gpu-autostop-cli-{uuid.uuid4().hex[:12]}")

    # control plane

    def _call(self, action: str, payload: dict[str, Any], read_timeout_s: float = 30.0) -> dict[str, Any]:
        name = function_name(self.name, action)
        answer = self.invoke(name, payload, read_timeout_s)
        if not isinstance(answer, dict):
            raise ClientError("ControlPlaneError", f"{name} answered {answer!r}, expected a JSON object")
        if answer.get("ok") is False:
            error = _obj(answer.get("error"))
            retry = answer.get("retry_after_s")
            raise ClientError(
                str(error.get("code") or "ControlPlaneError"),
                str(error.get("message") or f"{name} refused the request"),
                retry_after_s=float(retry) if isinstance(retry, int | float) and retry > 0 else None,
            )
        return answer

    def start(self, wait: str = "none", timeout_s: float | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"wait": wait}
        if timeout_s is not None:
            payload["timeout_s"] = timeout_s
        budget = timeout_s if timeout_s is not None else (0 if wait == "none" else 300)
        return self._call("start", payload, read_timeout_s=budget + LAMBDA_READ_MARGIN_S)

    def status(self) -> dict[str, Any]:
        return self._call("status", {})

    def stop(self, force: bool = False, reason: str = "") -> dict[str, Any]:
        payload: dict[str, Any] = {}
        if force:
            payload["force"] = True
        if reason:
            payload["reason"] = reason
        return self._call("stop", payload)

    def _elapsed(self, since: datetime) -> float:
        return (self.clock.now() - since).total_seconds()

    def wait_ready(
        self,
        timeout_s: float = READY_TIMEOUT_S,
        poll_s: float = READY_POLL_S,
        first: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Poll status until ready (or fail on a terminal state), at most timeout_s."""
        began = self.clock.now()
        answer = first
        last_error: ClientError | None = None
        while True:
            if answer is not None:
                state = answer.get("state")
                if answer.get("ready"):
                    return answer
                if state in GONE_STATES:
                    raise ClientError("InstanceGone", f"instance {answer.get('instance_id')} is {state}")
                if state in ("stopped", "stopping"):
                    raise ClientError(
                        "InstanceStopped",
                        f"instance {answer.get('instance_id')} is {state} although it was started",
                        retry_after_s=30,
                    )
                agent = f", agent {answer['agent']}" if answer.get("agent") else ""
                self.progress(f"waiting for ComfyUI: instance {state}{agent} ({self._elapsed(began):.0f} s)")
            remaining = timeout_s - self._elapsed(began)
            if remaining <= 0:
                state = (answer or {}).get("state", "unknown")
                extra = f"; last status error: {last_error.message}" if last_error else ""
                raise ClientError(
                    "ReadyTimeout",
                    f"ComfyUI was not ready after {timeout_s:.0f} s (instance {state}){extra}",
                )
            self.clock.sleep(min(poll_s, remaining))
            try:
                answer = self.status()
                last_error = None
            except ClientError as exc:
                # A transient failure of one status call; the deadline still bounds the loop.
                last_error, answer = exc, None
                self.progress(f"status failed ({exc.code}: {exc.message}); retrying")

    # ComfyUI

    def queue_prompt(self, base: str, graph: dict[str, Any]) -> tuple[str, list[str]]:
        body = json.dumps({"prompt": graph, "client_id": self.client_id}).encode()
        reply = self.http("POST", f"{base}/prompt", body, HTTP_TIMEOUT_S)
        data = reply.json()
        if reply.status == 200 and isinstance(data, dict) and data.get("prompt_id"):
            warnings = summarize_node_errors(data.get("node_errors"))
            return str(data["prompt_id"]), warnings
        raise prompt_rejection(reply.status, data)

    def wait_history(
        self,
        base: str,
        prompt_id: str,
        timeout_s: float = GENERATE_TIMEOUT_S,
        poll_s: float = HISTORY_POLL_S,
    ) -> dict[str, Any]:
        began = self.clock.now()
        last_note = -1.0
        while True:
            entry: Any = None
            try:
                reply = self.http(
                    "GET", f"{base}/history/{urllib.parse.quote(prompt_id)}", None, HTTP_TIMEOUT_S
                )
                data = reply.json()
                entry = data.get(prompt_id) if reply.status == 200 and isinstance(data, dict) else None
            except ClientError as exc:
                self.progress(f"history poll failed ({exc.message}); retrying")
            if isinstance(entry, dict):
                failure = history_failure(entry)
                if failure:
                    raise failure
                status = _obj(entry.get("status"))
                if status.get("completed") or status.get("status_str") == "success":
                    return entry
            elapsed = self._elapsed(began)
            if elapsed >= timeout_s:
                raise ClientError(
                    "GenerationTimeout", f"prompt {prompt_id} did not finish within {timeout_s:.0f} s"
                )
            if elapsed - last_note >= 10:
                self.progress(f"generating {prompt_id} ({elapsed:.0f} s)")
                last_note = elapsed
            self.clock.sleep(min(poll_s, timeout_s - elapsed))

    def download(self, base: str, image: dict[str, str], out_dir: Path) -> Path:
        reply = self.http("GET", view_url(base, image), None, HTTP_TIMEOUT_S)
        if reply.status != 200:
            raise ClientError(
                "ComfyUIUnreachable", f"GET /view for {image['filename']} answered HTTP {reply.status}"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        path = _safe_path(out_dir, image["filename"])
        path.write_bytes(reply.body)
        return path

    def generate(
        self,
        graph: dict[str, Any],
        out_dir: Path,
        *,
        ready_timeout_s: float = READY_TIMEOUT_S,
        timeout_s: float = GENERATE_TIMEOUT_S,
        ready_poll_s: float = READY_POLL_S,
        history_poll_s: float = HISTORY_POLL_S,
    ) -> GenerateResult:
        """One prompt, as the n8n workflow does it: start first, then wait, queue, poll, download."""
        started = self.start("none")
        self.progress(
            f"start: instance {started.get('instance_id')} {started.get('state')}"
            + (" (started now)" if started.get("started") else "")
        )
        status = self.wait_ready(ready_timeout_s, ready_poll_s, first=started)
        base = (self.comfyui_url or status.get("comfyui_url") or "").rstrip("/")
        if not base:
            raise ClientError("NoComfyUIUrl", "the instance is ready but has no ComfyUI URL (no public IP)")
        prompt_id, warnings = self.queue_prompt(base, graph)
        for warning in warnings:
            self.progress(f"warning: ComfyUI skipped an output: {warning}")
        self.progress(f"queued prompt {prompt_id} on {base}")
        entry = self.wait_history(base, prompt_id, timeout_s, history_poll_s)
        images = output_images(entry)
        if not images:
            raise ClientError("NoImage", f"prompt {prompt_id} finished without an image output")
        files = [str(self.download(base, image, out_dir)) for image in images]
        return GenerateResult(prompt_id, files, images, warnings)


# --- command line -------------------------------------------------------------------------------


def _positive(kind: type[int] | type[float]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: the options work before and after the command without overwriting each other.
    common.add_argument(
        "--name",
        default=argparse.SUPPRESS,
        help=f"function name prefix (env {NAME_ENV}, default {DEFAULT_NAME})",
    )
    common.add_argument("--region", default=argparse.SUPPRESS, help="AWS region (default: AWS_REGION etc.)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")

    parser = argparse.ArgumentParser(
        prog="gpu-autostop",
        description="Start, check, stop the gpu-autostop GPU instance, and generate images with it.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    start = commands.add_parser("start", parents=[common], help="start the instance (idempotent)")
    start.add_argument("--wait", choices=("none", "running", "ready"), default="none")
    start.add_argument(
        "--timeout", type=_positive(float), help="seconds the start function may wait (<= 600)"
    )
    commands.add_parser("status", parents=[common], help="show state and readiness")
    stop = commands.add_parser("stop", parents=[common], help="stop if idle; --force: emergency stop")
    stop.add_argument("--force", action="store_true", help="stop now, even if busy")
    stop.add_argument("--reason", default="", help="why (goes into the notification)")
    gen = commands.add_parser("generate", parents=[common], help="start, wait, run a prompt, download images")
    source = gen.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", action="append", help="text prompt (repeat for several images)")
    source.add_argument("--workflow", type=Path, action="append", help="ComfyUI API-format graph JSON")
    gen.add_argument("--negative", default="", help="negative prompt (with --prompt)")
    gen.add_argument("--seed", type=int, help="seed (default: random)")
    gen.add_argument("--width", type=_positive(int))
    gen.add_argument("--height", type=_positive(int))
    gen.add_argument("--steps", type=_positive(int))
    gen.add_argument("--checkpoint", help=f"checkpoint file name (default {DEFAULT_CHECKPOINT})")
    gen.add_argument("--out", type=Path, default=Path("outputs"), help="directory for the images (./outputs)")
    gen.add_argument("--comfyui-url", help="reach ComfyUI here instead of the instance's public address")
    gen.add_argument("--ready-timeout", type=_positive(float), default=READY_TIMEOUT_S, help="seconds")
    gen.add_argument(
        "--timeout", type=_positive(float), default=GENERATE_TIMEOUT_S, help="seconds per prompt"
    )
    # Listed for --help; gpu_autostop_cli.__main__ hands them their own parsers before this one runs.
    commands.add_parser("emergency-stop", help="stop now via the stop function, or EC2 if it is gone")
    commands.add_parser("cap", help="show (status) or reset (reset) the hard spend cap")
    return parser


def _print_start(answer: dict[str, Any], out: TextIO) -> None:
    what = "started" if answer.get("started") else f"already {answer.get('state')}"
    print(f"instance {answer.get('instance_id')}: {what} ({answer.get('instance_type')})", file=out)
    print(f"state: {answer.get('state')}  ready: {'yes' if answer.get('ready') else 'no'}", file=out)
    if answer.get("comfyui_url"):
        print(f"ComfyUI: {answer['comfyui_url']}", file=out)
    if answer.get("timed_out"):
        print(f"the wait timed out after {answer.get('waited_s')} s", file=out)
    if not answer.get("ready") and answer.get("retry_after_s"):
        print(f"not ready yet: check again in {answer['retry_after_s']} s (`status`)", file=out)


def _print_status(answer: dict[str, Any], out: TextIO) -> None:
    print(
        f"instance {answer.get('instance_id')} ({answer.get('instance_type')}): {answer.get('state')}",
        file=out,
    )
    ready = (
        "yes" + (f" (since {answer['ready_at']})" if answer.get("ready_at") else "")
        if answer.get("ready")
        else "no"
    )
    print(f"ready: {ready}", file=out)
    for key, label in (
        ("comfyui_url", "ComfyUI"),
        ("running_since", "running since"),
        ("queue_depth", "queue depth"),
        ("idle_minutes", "idle minutes"),
        ("agent", "agent"),
    ):
        if answer.get(key) is not None:
            print(f"{label}: {answer[key]}", file=out)


def _print_stop(answer: dict[str, Any], out: TextIO) -> None:
    verb = "stopped" if answer.get("stopped") else "not stopped"
    print(
        f"instance {answer.get('instance_id')}: {verb} ({answer.get('decision')}: {answer.get('reason')})",
        file=out,
    )
    if answer.get("session_cost_usd") is not None:
        print(f"session: {answer.get('session_hours')} h, about ${answer['session_cost_usd']}", file=out)


def _graphs(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    if args.workflow:
        return [(str(path), load_workflow(path)) for path in args.workflow]
    return [
        (
            text,
            txt2img(
                text,
                negative=args.negative,
                seed=args.seed,
                width=args.width,
                height=args.height,
                steps=args.steps,
                checkpoint=args.checkpoint,
            ),
        )
        for text in args.prompt
    ]


def main(
    argv: Sequence[str] | None = None,
    *,
    invoker: LambdaInvoker | None = None,
    transport: Transport | None = None,
    clock: Clock | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors are 2, --help is 0
        return int(exc.code or 0)
    as_json = getattr(args, "json", False)
    name = getattr(args, "name", None) or os.environ.get(NAME_ENV) or DEFAULT_NAME

    def progress(message: str) -> None:
        print(message, file=err, flush=True)

    client = Client(
        name=name,
        invoke=invoker or BotoInvoker(region=getattr(args, "region", None)),
        http=transport or urllib_transport,
        clock=clock or SystemClock(),
        progress=progress,
        comfyui_url=getattr(args, "comfyui_url", None),
    )

    def emit(answer: dict[str, Any], printer: Callable[[dict[str, Any], TextIO], None]) -> None:
        if as_json:
            print(json.dumps(answer, indent=2, sort_keys=True), file=out)
        else:
            printer(answer, out)

    try:
        if args.command == "start":
            emit(client.start(args.wait, args.timeout), _print_start)
        elif args.command == "status":
            emit(client.status(), _print_status)
        elif args.command == "stop":
            emit(client.stop(args.force, args.reason), _print_stop)
        else:
            return _generate(client, args, out, err, as_json)
    except ClientError as exc:
        if as_json:
            print(json.dumps(exc.as_dict(), indent=2, sort_keys=True), file=out)
        print(exc.describe(), file=err)
        return exc.exit_code
    return EXIT_OK


def _generate(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO, as_json: bool) -> int:
    graphs = _graphs(args)  # bad input fails before anything is started
    results: list[dict[str, Any]] = []
    worst = EXIT_OK
    for index, (label, graph) in enumerate(graphs, 1):
        if len(graphs) > 1:
            print(f"[{index}/{len(graphs)}] {label}", file=err)
        try:
            result = client.generate(
                graph, args.out, ready_timeout_s=args.ready_timeout, timeout_s=args.timeout
            )
        except ClientError as exc:
            print(exc.describe(), file=err)
            results.append({"input": label, **exc.as_dict()})
            worst = max(worst, exc.exit_code)
            if exc.code not in (
                "ComfyUIInvalidPrompt",
                "ComfyUIExecutionError",
                "ComfyUIInterrupted",
                "NoImage",
            ):
                break  # the instance or the control plane failed: the other prompts would fail too
            continue
        results.append(
            {
                "input": label,
                "ok": True,
                "prompt_id": result.prompt_id,
                "files": result.files,
                "warnings": result.warnings,
            }
        )
        if not as_json:
            for path in result.files:
                print(path, file=out)
    if as_json:
        print(json.dumps({"ok": worst == EXIT_OK, "results": results}, indent=2), file=out)
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
