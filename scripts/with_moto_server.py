"""Run a command against a moto server on 127.0.0.1 (a free port), then stop the server.

Usage: python scripts/with_moto_server.py [--log FILE] -- COMMAND [ARG...]

The command sees the server's URL in MOTO_ENDPOINT and TF_VAR_moto_endpoint, and every
``{endpoint}`` in its arguments is replaced with it. The server's output goes to the log file
(default build/moto-server.log). The server is stopped however the command ends, and the
command's exit status is returned.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_ready(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"moto server exited with {server.returncode}; see {log}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/")  # any answer means it is up
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(
        f"moto server did not answer on {HOST}:{port} within {START_TIMEOUT_S:.0f} s; see {log}"
    )


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@dataclass(frozen=True)
class MotoServer:
    endpoint: str
    pid: int


@contextlib.contextmanager
def moto_server(log_path: Path) -> Iterator[MotoServer]:
    """A moto server on 127.0.0.1 (a free port) for the duration of the block."""
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            # AWS-managed policies (e.g. AmazonSSMManagedInstanceCore) exist only when asked for.
            env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
            start_new_session=True,  # a Ctrl-C goes to the caller, which stops the server last
        )
        try:
            wait_until_ready(port, server, log_path)
            yield MotoServer(f"http://{HOST}:{port}", server.pid)
        finally:
            stop(server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, default=ROOT / "build" / "moto-server.log")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")

    with moto_server(args.log) as server:
        endpoint = server.endpoint
        print(f"moto server ready at {endpoint} (log: {args.log})", flush=True)
        env = {**os.environ, "MOTO_ENDPOINT": endpoint, "AWS_ENDPOINT_URL": endpoint}
        return subprocess.run(
            [a.replace("{endpoint}", endpoint) for a in command], env=env, check=False
        ).returncode


if __name__ == "__main__":
    raise SystemExit(main())
