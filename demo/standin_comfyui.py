"""A stand-in ComfyUI for the demo: the real API shapes, no GPU, no models.

It answers the routes the agent, the n8n workflow and the client use, in the
shapes recorded from a real ComfyUI 0.8.0 (tests/fixtures/comfyui/): a posted
prompt enters the queue, "runs" for ``job_seconds``, and lands in the history
with one output image that ``/view`` serves as a real PNG.

    python -m demo.standin_comfyui --port 8188 --job-seconds 4
"""

from __future__ import annotations

import argparse
import json
import struct
import threading
import time
import uuid
import zlib
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SYSTEM_STATS: dict[str, Any] = {
    "system": {
        "os": "linux",
        "ram_total": 16_000_000_000,
        "ram_free": 15_000_000_000,
        "comfyui_version": "0.8.0",
        "python_version": "3.12 (stand-in)",
        "pytorch_version": "stand-in",
        "embedded_python": False,
        "argv": ["main.py", "--listen", "127.0.0.1"],
    },
    "devices": [{"name": "stand-in", "type": "cpu", "index": None, "vram_total": 0, "vram_free": 0}],
}


def png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (40, 120, 220)) -> bytes:
    """A small, valid PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def _error(kind: str, message: str) -> dict[str, Any]:
    return {
        "error": {"type": kind, "message": message, "details": message, "extra_info": {}},
        "node_errors": {},
    }


@dataclass
class Job:
    number: int
    prompt_id: str
    prompt: dict[str, Any]
    extra: dict[str, Any]
    outputs: list[str]

    def item(self) -> list[Any]:
        return [self.number, self.prompt_id, self.prompt, self.extra, self.outputs]


@dataclass
class StandinState:
    job_seconds: float = 4.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)
    pending: deque[Job] = field(default_factory=deque)
    running: Job | None = None
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    counter: int = 0
    images: int = 0
    stopped: bool = False

    def submit(self, prompt: dict[str, Any], client_id: str | None) -> Job:
        outputs = [
            k
            for k, node in prompt.items()
            if isinstance(node, dict) and "Save" in str(node.get("class_type"))
        ]
        with self.lock:
            job = Job(
                self.counter,
                str(uuid.uuid4()),
                prompt,
                {"client_id": client_id, "create_time": int(time.time() * 1000)},
                outputs or sorted(prompt)[-1:],
            )
            self.counter += 1
            self.pending.append(job)
        self.wake.set()
        return job

    def queue(self) -> dict[str, list[Any]]:
        with self.lock:
            return {
                "queue_running": [self.running.item()] if self.running else [],
                "queue_pending": [job.item() for job in self.pending],
            }

    def work(self) -> None:
        """Run queued jobs one by one, like ComfyUI's single executor."""
        while not self.stopped:
            with self.lock:
                job = self.pending.popleft() if self.pending else None
                self.running = job
            if job is None:
                self.wake.wait(0.2)
                self.wake.clear()
                continue
            started = int(time.time() * 1000)
            deadline = time.monotonic() + self.job_seconds
            while not self.stopped and time.monotonic() < deadline:
                time.sleep(min(0.05, self.job_seconds))
            with self.lock:
                self.images += 1
                name = f"ComfyUI_{self.images:05d}_.png"
                self.history[job.prompt_id] = {
                    "prompt": job.item(),
                    "outputs": {
                        job.outputs[0]: {"images": [{"filename": name, "subfolder": "", "type": "output"}]}
                    },
                    "status": {
                        "status_str": "success",
                        "completed": True,
                        "messages": [
                            ["execution_start", {"prompt_id": job.prompt_id, "timestamp": started}],
                            [
                                "execution_success",
                                {"prompt_id": job.prompt_id, "timestamp": int(time.time() * 1000)},
                            ],
                        ],
                    },
                    "meta": {},
                }
                self.running = None


class Handler(BaseHTTPRequestHandler):
    server_version = "ComfyUI-standin/0.8.0"
    state: StandinState  # set on the subclass made by serve()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode())

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path = url.path.removeprefix("/api")
        if path == "/system_stats":
            self._json(200, SYSTEM_STATS)
        elif path == "/queue":
            self._json(200, self.state.queue())
        elif path == "/prompt":
            queue = self.state.queue()
            remaining = len(queue["queue_running"]) + len(queue["queue_pending"])
            self._json(200, {"exec_info": {"queue_remaining": remaining}})
        elif path == "/history":
            with self.state.lock:
                self._json(200, dict(self.state.history))
        elif path.startswith("/history/"):
            prompt_id = path.removeprefix("/history/")
            with self.state.lock:
                entry = self.state.history.get(prompt_id)
            self._json(200, {prompt_id: entry} if entry else {})
        elif path == "/view":
            query = parse_qs(url.query)
            name = (query.get("filename") or [""])[0]
            if not name.startswith("ComfyUI_") or "/" in name:
                self._send(404, b"404: Not Found", "text/plain")
            else:
                self._send(200, png(), "image/png")
        else:
            self._send(404, b"404: Not Found", "text/plain")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path.removeprefix("/api")
        if path != "/prompt":
            self._send(404, b"404: Not Found", "text/plain")
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._json(400, _error("invalid_prompt", "Invalid JSON"))
            return
        prompt = body.get("prompt") if isinstance(body, dict) else None
        if prompt is None:
            self._json(400, _error("no_prompt", "No prompt provided"))
            return
        if not isinstance(prompt, dict) or not prompt:
            self._json(400, _error("prompt_no_outputs", "Prompt has no outputs"))
            return
        job = self.state.submit(prompt, body.get("client_id"))
        self._json(200, {"prompt_id": job.prompt_id, "number": job.number, "node_errors": {}})


class StandinComfyUI:
    """Run the stand-in on 127.0.0.1 in background threads; ``close()`` stops everything."""

    def __init__(self, port: int = 0, job_seconds: float = 4.0) -> None:
        self.state = StandinState(job_seconds=job_seconds)
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._threads = [
            threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True),
            threading.Thread(target=self.state.work, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self.state.stopped = True
        self.state.wake.set()
        self.server.shutdown()
        self.server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> StandinComfyUI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A stand-in ComfyUI speaking the real API shapes.")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--job-seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    standin = StandinComfyUI(args.port, args.job_seconds)
    print(
        f"stand-in ComfyUI on {standin.url} (jobs take {args.job_seconds:g} s); Ctrl-C stops it", flush=True
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        standin.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
