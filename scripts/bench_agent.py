"""Measure the on-instance agent: peak memory, CPU share, and how fast readiness reaches the record.

Runs the real agent (``python -m autostop_agent``, default poll interval) as a
child process for ``--seconds`` against:

- a stand-in ComfyUI on 127.0.0.1 replaying the recorded answers in
  tests/agent/fixtures: the port refuses connections for ``--down-seconds``
  (ComfyUI still starting), then answers, with the queue busy for a while in
  the middle of the run;
- a moto server on 127.0.0.1 as AWS (``AWS_ENDPOINT_URL``), so the agent does its
  real boto3 PutParameter / PutMetricData calls.

It prints the agent's peak resident memory (VmHWM), its CPU time (with its
children's: the one-off slim botocore data build) as a share of one core (whole
run, and steady state after readiness), the delay from
ComfyUI's first answer to a record with ``comfyui_ready: true`` in SSM, and
the delay from the queue turning busy to a busy record. Targets: < 50 MB,
< 1 % of a core, < 5 s. Exit status 1 when a target is missed.

    python -m scripts.bench_agent --seconds 120      # from the repository root
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

from scripts.with_moto_server import moto_server

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "agent" / "fixtures"
PARAMETER = "/gpu-autostop/bench/agent-state"
INSTANCE = "i-0be0c0000000000b1"
TARGET_RSS_MB, TARGET_CPU_PCT, TARGET_READY_S = 50.0, 1.0, 5.0


class StandIn:
    """ComfyUI stand-in: bound but not listening (connection refused) until ``start()``."""

    def __init__(self) -> None:
        self.queue = (FIXTURES / "queue_idle.json").read_bytes()
        self.first_answer: float | None = None
        self.requests = 0
        routes = {
            "/system_stats": (FIXTURES / "system_stats.json").read_bytes(),
            "/history": (FIXTURES / "history.json").read_bytes(),
            "/prompt": (FIXTURES / "prompt_get.json").read_bytes(),
        }
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.requests += 1
                path = self.path.split("?")[0]
                body = stand_in.queue if path == "/queue" else routes.get(path)
                if body is None:
                    self.send_error(404)
                    return
                if stand_in.first_answer is None:
                    stand_in.first_answer = time.monotonic()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.daemon_threads = True
        self.server.server_bind()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self.server.server_activate()
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def proc_stat(pid: int) -> tuple[float, float, float]:
    """(CPU seconds, VmHWM MB, VmRSS MB) of a process; CPU includes its finished children."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    cpu = sum(int(f) for f in fields[11:15]) / ticks  # utime, stime, cutime, cstime
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return cpu, int(status["VmHWM"].split()[0]) / 1024, int(status["VmRSS"].split()[0]) / 1024


def read_record(ssm: Any) -> dict[str, Any] | None:
    try:
        value = ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    data = json.loads(value)
    return data if isinstance(data, dict) else None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=120.0, help="how long the agent runs (default 120)")
    parser.add_argument(
        "--down-seconds", type=float, default=10.0, help="ComfyUI refuses connections this long"
    )
    args = parser.parse_args()
    if args.seconds < args.down_seconds + 30:
        parser.error("--seconds must leave at least 30 s after --down-seconds")

    aws_env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.environ.update(aws_env)
    moto = contextlib.ExitStack()
    stand_in = StandIn()
    workdir = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    log_path = workdir / "agent.log"
    agent: subprocess.Popen[bytes] | None = None
    try:
        endpoint = moto.enter_context(moto_server(workdir / "moto-server.log")).endpoint
        ssm = boto3.client("ssm", endpoint_url=endpoint)
        cloudwatch = boto3.client("cloudwatch", endpoint_url=endpoint)
        (workdir / "agent.env").write_text("")
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO / "agent"),
            "AGENT_ENV_FILE": str(workdir / "agent.env"),
            "AGENT_LOCK_FILE": str(workdir / "agent.lock"),
            "COMFYUI_URL": stand_in.url,
            "AGENT_STATE_PARAMETER": PARAMETER,
            "INSTANCE_ID": INSTANCE,
            "AWS_ENDPOINT_URL": endpoint,
            # The bench's own moto server loads the 2 cores; CPU must not mask the queue's busy/idle change.
            "CPU_BUSY_PERCENT": "100",
            **aws_env,
        }
        with log_path.open("wb") as log:
            agent = subprocess.Popen([sys.executable, "-m", "autostop_agent"], env=env, stderr=log)
        started = time.monotonic()
        end = started + args.seconds
        busy_at = started + args.down_seconds + (args.seconds - args.down_seconds) * 0.4
        idle_at = busy_at + 20
        ready_seen = busy_switched = busy_seen = steady_from = None
        steady_cpu = 0.0
        comfy_started = False
        while time.monotonic() < end:
            now = time.monotonic()
            if agent.poll() is not None:
                raise SystemExit(f"the agent exited early with {agent.returncode}; see {log_path}")
            if not comfy_started and now - started >= args.down_seconds:
                stand_in.start()
                comfy_started = True
            if busy_switched is None and now >= busy_at:
                stand_in.queue = (FIXTURES / "queue_busy.json").read_bytes()
                busy_switched = time.monotonic()
            if busy_switched is not None and now >= idle_at:
                stand_in.queue = (FIXTURES / "queue_idle.json").read_bytes()
            watching = (comfy_started and ready_seen is None) or (
                busy_switched is not None and busy_seen is None
            )
            if watching:
                record = read_record(ssm)
                if ready_seen is None and record and record.get("comfyui_ready"):
                    ready_seen = time.monotonic()
                    steady_from = ready_seen + 5
                if busy_switched is not None and busy_seen is None and record and record.get("queue_pending"):
                    busy_seen = time.monotonic()
            if steady_from is not None and now >= steady_from and not steady_cpu:
                steady_cpu = proc_stat(agent.pid)[0]
                steady_from = now
            time.sleep(0.05 if watching else 0.5)

        cpu, peak_mb, rss_mb = proc_stat(agent.pid)
        elapsed = time.monotonic() - started
        agent.terminate()
        exit_status = agent.wait(timeout=30)
        history = ssm.get_parameter_history(Name=PARAMETER)["Parameters"]
        metrics = cloudwatch.list_metrics(Namespace="GpuAutostop")["Metrics"]
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
        stand_in.close()
        moto.close()

    ready_delay = ready_seen - stand_in.first_answer if ready_seen and stand_in.first_answer else None
    busy_delay = busy_seen - busy_switched if busy_seen and busy_switched else None
    cpu_share = 100.0 * cpu / elapsed
    steady_share = (
        100.0 * (cpu - steady_cpu) / (time.monotonic() - steady_from) if steady_from and steady_cpu else None
    )
    rows = [
        (
            "run",
            f"{elapsed:.0f} s, default poll interval, AWS = moto server, ComfyUI down the first "
            f"{args.down_seconds:g} s, queue busy 20 s",
        ),
        ("peak RSS (VmHWM)", f"{peak_mb:.1f} MB (now {rss_mb:.1f} MB; target < {TARGET_RSS_MB:g})"),
        ("CPU, whole run", f"{cpu_share:.2f} % of one core ({cpu:.2f} s CPU; target < {TARGET_CPU_PCT:g})"),
        ("CPU, steady state", "n/a" if steady_share is None else f"{steady_share:.2f} % of one core"),
        ("ComfyUI first answer -> ready record", "never" if ready_delay is None else f"{ready_delay:.2f} s"),
        ("queue busy -> busy record", "never" if busy_delay is None else f"{busy_delay:.2f} s"),
        ("records written", str(len(history))),
        ("metrics published", ", ".join(sorted(m["MetricName"] for m in metrics)) or "none"),
        ("exit on SIGTERM", str(exit_status)),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    missed = [
        name
        for name, ok in (
            ("memory", peak_mb < TARGET_RSS_MB),
            ("cpu", cpu_share < TARGET_CPU_PCT),
            ("readiness", ready_delay is not None and ready_delay < TARGET_READY_S),
            ("sigterm", exit_status == 0),
        )
        if not ok
    ]
    print("targets met" if not missed else f"targets MISSED: {', '.join(missed)} (agent log: {log_path})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
