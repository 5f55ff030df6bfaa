"""``python -m autostop_agent [--once] [--env-file PATH]`` (installed as ``gpu-autostop-agent``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import select
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

from autostop_agent import __version__
from autostop_agent.agent import Agent
from autostop_agent.aws import AwsSink, boto_factory
from autostop_agent.clock import Clock, SystemClock
from autostop_agent.comfyui import ComfyClient
from autostop_agent.config import EX_CONFIG, Config, ConfigError, load_config, read_environment
from autostop_agent.gpu import NvmlGpu
from autostop_agent.host import Host
from autostop_agent.imds import Identity, fetch_identity
from autostop_agent.lock import LockHeld, SingleInstanceLock
from autostop_agent.sessions import Sessions, scan

EX_LOCKED = 75
log = logging.getLogger("autostop_agent")


class StopSignal:
    """SIGTERM / SIGINT ask the loop to stop: a flag, and a wait() that a signal ends at once.

    Python runs a signal handler between bytecodes, after the system call it interrupted is retried
    (PEP 475), so ``time.sleep(1)`` would still sleep its second out. ``signal.set_wakeup_fd`` makes
    the interpreter write a byte to a socket when any signal arrives; wait() selects on it.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)

    def install(self) -> None:
        signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signum = signum

    def __call__(self) -> bool:
        return self.signum is not None

    def wait(self, seconds: float) -> None:
        if seconds > 0 and not self():
            select.select([self._read], [], [], seconds)
        with contextlib.suppress(BlockingIOError):
            self._read.recv(4096)


def build_agent(
    config: Config,
    clock: Clock,
    *,
    imds_timeout: float = 2.0,
    cancelled: Callable[[], bool] = lambda: False,
) -> Agent:
    """The agent wired to the real world (ComfyUI over HTTP, NVML, /proc, IMDS, boto3).

    ``cancelled`` (the stop signal) ends a ComfyUI or IMDS request within a quarter of a second.
    """

    def sessions() -> Sessions:
        if not config.detect_sessions:
            return Sessions()
        return scan(activity_regex=config.activity_process_regex)

    def sink(region: str) -> AwsSink:
        # Slim botocore data next to the lock file (/run/gpu-autostop): rebuilt at each boot, 30 kB.
        return AwsSink(boto_factory(region, Path(config.lock_file).parent / "botocore-data"))

    def identify() -> Identity:
        return fetch_identity(config.imds_endpoint, timeout=imds_timeout, cancelled=cancelled)

    return Agent(
        config,
        clock=clock,
        comfy=ComfyClient(config.comfyui_url, config.comfyui_timeout_seconds, cancelled=cancelled),
        gpu=NvmlGpu(clock.monotonic),
        host=Host(clock.monotonic, window_seconds=config.cpu_window_seconds),
        scan_sessions=sessions,
        sink_factory=sink,
        identify=identify,
    )


def main(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None, clock: Clock | None = None
) -> int:
    parser = argparse.ArgumentParser(
        prog="gpu-autostop-agent",
        description="Report ComfyUI readiness and activity to gpu-autostop; self-stop when forgotten.",
    )
    parser.add_argument(
        "--once", action="store_true", help="take one reading, print the record, write nothing"
    )
    parser.add_argument(
        "--env-file", help="env file to read (default: $AGENT_ENV_FILE or /etc/gpu-autostop/agent.env)"
    )
    parser.add_argument("--check-config", action="store_true", help="validate the configuration and exit")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)

    env = os.environ if environ is None else environ
    logging.basicConfig(
        level=env.get("LOG_LEVEL", "INFO").upper()
        if env.get("LOG_LEVEL", "INFO").upper() in ("DEBUG", "INFO", "WARNING", "ERROR")
        else "INFO",
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config(read_environment(env, args.env_file), require_parameter=not args.once)
    except ConfigError as exc:
        print(f"gpu-autostop-agent: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    if args.check_config:
        print(
            f"gpu-autostop-agent: configuration OK (record {config.agent_state_parameter})", file=sys.stderr
        )
        return 0

    clock = clock or SystemClock()
    if args.once:
        agent = build_agent(config, clock, imds_timeout=1.0)
        print(json.dumps(agent.once(), indent=2))
        agent.gpu.close()
        return 0

    lock = SingleInstanceLock(config.lock_file)
    try:
        lock.acquire()
    except LockHeld as exc:
        print(f"gpu-autostop-agent: {exc}", file=sys.stderr)
        return EX_LOCKED
    except OSError as exc:
        print(f"gpu-autostop-agent: cannot create the lock file {config.lock_file}: {exc}", file=sys.stderr)
        return EX_CONFIG

    stop = StopSignal()
    stop.install()
    try:
        build_agent(config, clock, cancelled=stop).run(stop, wait=stop.wait)
    finally:
        lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
