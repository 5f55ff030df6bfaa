"""Test doubles for the agent: a fake clock, a ComfyUI stand-in on 127.0.0.1, a recording AWS sink."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from autostop_agent.agent import Agent
from autostop_agent.comfyui import ComfyClient
from autostop_agent.config import load_config
from autostop_agent.imds import Identity, ImdsError
from autostop_agent.sessions import Sessions

FIXTURES = Path(__file__).parent / "fixtures"
BOOT = datetime(2026, 11, 22, 8, 0, 3, tzinfo=UTC)
INSTANCE = "i-0123456789abcdef0"
PARAMETER = "/gpu-autostop/agent-state"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class FakeClock:
    """Wall and monotonic time that move only when the code sleeps (or the test jumps the wall clock)."""

    def __init__(self, start: datetime = BOOT + timedelta(seconds=40), mono: float = 1000.0) -> None:
        self._wall0 = start
        self._mono0 = mono
        self.mono = mono
        self.wall_offset = timedelta()
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self._wall0 + timedelta(seconds=self.mono - self._mono0) + self.wall_offset

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.mono += max(seconds, 0.0)

    def elapsed(self) -> float:
        return self.mono - self._mono0


def history_entry(prompt_id: str, ended: datetime | None, success: bool) -> tuple[str, dict[str, Any]]:
    template = next(iter(json.loads(fixture_bytes("history_prompt_id.json")).values()))
    entry = json.loads(json.dumps(template))
    entry["prompt"][1] = prompt_id
    status = entry["status"]
    status["status_str"], status["completed"] = ("success", True) if success else ("error", False)
    for message in status["messages"]:
        message[1]["prompt_id"] = prompt_id
        if ended is None:
            del message[1]["timestamp"]  # an older ComfyUI: no timestamps
        else:
            message[1]["timestamp"] = int(ended.timestamp() * 1000)
    return prompt_id, entry


class ComfyStandIn:
    """Replays recorded ComfyUI answers. ``down`` drops connections unanswered; ``hang`` never answers."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        self.down = False
        self.hang = False
        self.requests: list[str] = []
        self.first_answer_mono: float | None = None
        self._clock = clock
        self._release = threading.Event()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                stand_in.requests.append(self.path)
                if stand_in.down:
                    self.close_connection = True
                    return
                if stand_in.hang:
                    stand_in._release.wait(10)
                    return
                route = stand_in.routes.get(self.path) or stand_in.routes.get(self.path.split("?")[0])
                status, ctype, body = route or (404, "text/plain", b"404: Not Found")
                if status == 200 and stand_in.first_answer_mono is None and stand_in._clock is not None:
                    stand_in.first_answer_mono = stand_in._clock.monotonic()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        self.idle()
        self.set_json("/system_stats", fixture_bytes("system_stats.json"))
        self.set_json("/history", fixture_bytes("history_empty.json"))
        self.set_json("/prompt", fixture_bytes("prompt_get.json"))

    def set_json(self, path: str, body: bytes | str, status: int = 200) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = (status, "application/json", data)

    def set_raw(self, path: str, body: bytes, content_type: str, status: int = 200) -> None:
        self.routes[path] = (status, content_type, body)

    def idle(self) -> None:
        self.set_json("/queue", fixture_bytes("queue_idle.json"))

    def busy(self) -> None:
        self.set_json("/queue", fixture_bytes("queue_busy.json"))

    def history(self, *entries: tuple[str, datetime | None, bool]) -> None:
        """GET /history answers these prompts (id, end time, succeeded), oldest first, each shaped
        like the recorded answer (history_prompt_id.json) with its id, times and status replaced."""
        self.set_json("/history", json.dumps(dict(history_entry(*e) for e in entries)))

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@dataclass
class Write:
    mono: float
    record: dict[str, Any]


@dataclass
class FakeSink:
    """Records what the agent sends; ``fail`` makes the next N calls of a kind fail."""

    clock: FakeClock
    writes: list[Write] = field(default_factory=list)
    metrics: list[tuple[float, str, list[dict[str, Any]]]] = field(default_factory=list)
    attempts: list[tuple[str, float]] = field(default_factory=list)
    fail_records: int = 0
    fail_metrics: int = 0
    stored: str | None = None

    def put_record(self, parameter: str, value: str) -> bool:
        assert parameter == PARAMETER
        self.attempts.append(("record", self.clock.monotonic()))
        if self.fail_records:
            self.fail_records -= 1
            return False
        self.writes.append(Write(self.clock.monotonic(), json.loads(value)))
        self.stored = value
        return True

    def get_record(self, parameter: str) -> str | None:
        return self.stored

    def put_metrics(self, namespace: str, metric_data: Sequence[dict[str, Any]]) -> bool:
        self.attempts.append(("metrics", self.clock.monotonic()))
        if self.fail_metrics:
            self.fail_metrics -= 1
            return False
        self.metrics.append((self.clock.monotonic(), namespace, list(metric_data)))
        return True


class FakeGpu:
    def __init__(self, value: float | None = 0.0) -> None:
        self.value = value

    def utilization(self) -> float | None:
        return self.value

    def close(self) -> None:
        pass


class FakeHost:
    def __init__(
        self, clock: FakeClock, *, uptime_at_start: float = 40.0, boot: datetime | None = BOOT
    ) -> None:
        self.clock = clock
        self.cpu: float | None = 2.0
        self.boot = boot
        self._uptime0 = uptime_at_start
        self._mono0 = clock.monotonic()

    def cpu_percent(self) -> float | None:
        return self.cpu

    def memory_percent(self) -> float | None:
        return 12.5

    def boot_time(self) -> datetime | None:
        return self.boot

    def uptime_seconds(self) -> float | None:
        return self._uptime0 + self.clock.monotonic() - self._mono0


class Runner:
    def __init__(self, status: int = 0) -> None:
        self.calls: list[tuple[float, tuple[str, ...]]] = []
        self.status = status
        self.clock: FakeClock | None = None

    def __call__(self, command: Sequence[str]) -> int:
        self.calls.append((self.clock.monotonic() if self.clock else 0.0, tuple(command)))
        return self.status


@dataclass
class Rig:
    agent: Agent
    clock: FakeClock
    comfy: ComfyStandIn
    sink: FakeSink
    gpu: FakeGpu
    host: FakeHost
    sessions: list[Sessions]
    runner: Runner

    def run(self, seconds: float, on_tick: Callable[[float], None] | None = None) -> None:
        """Drive the loop for ``seconds`` of fake time (bounded: at most 100,000 steps)."""
        end = self.clock.monotonic() + seconds
        for _ in range(100_000):
            if self.clock.monotonic() >= end - 1e-9:
                return
            if on_tick is not None:
                on_tick(self.clock.elapsed())
            self.clock.sleep(self.agent.step())
        raise AssertionError("loop did not finish")

    def records(self) -> list[dict[str, Any]]:
        return [w.record for w in self.sink.writes]


def make_rig(comfy: ComfyStandIn, clock: FakeClock, env: dict[str, str] | None = None, **kw: Any) -> Rig:
    settings = {
        "COMFYUI_URL": comfy.url,
        "AGENT_STATE_PARAMETER": PARAMETER,
        "INSTANCE_ID": INSTANCE,
        "AWS_REGION": "us-east-1",
        "COMFYUI_TIMEOUT_SECONDS": "0.5",
    }
    settings.update(env or {})
    config = load_config(settings)
    sink = kw.pop("sink", None) or FakeSink(clock)
    gpu = kw.pop("gpu", None) or FakeGpu()
    host = kw.pop("host", None) or FakeHost(clock)
    sessions: list[Sessions] = [Sessions()]
    runner = Runner()
    runner.clock = clock
    identify = kw.pop("identify", None)

    def no_imds() -> Identity:
        raise ImdsError("no IMDS in tests")

    agent = Agent(
        config,
        clock=clock,
        comfy=ComfyClient(config.comfyui_url, config.comfyui_timeout_seconds),
        gpu=gpu,
        host=host,
        scan_sessions=lambda: sessions[0],
        sink_factory=kw.pop("sink_factory", None) or (lambda region: sink),
        identify=identify or no_imds,
        runner=runner,
        backoff_rng=lambda: 1.0,
    )
    assert not kw, kw
    return Rig(agent, clock, comfy, sink, gpu, host, sessions, runner)


AGENT_SOURCE = Path(__file__).resolve().parents[2] / "agent"


def spawn_agent_service(env_file: Path) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    """`python -m autostop_agent` with only ``env_file`` as its settings; its stderr lines go to the queue."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "autostop_agent"],
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(AGENT_SOURCE),
            "AGENT_ENV_FILE": str(env_file),
        },
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines
