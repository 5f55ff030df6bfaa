"""ComfyUI and IMDS answers from hostile servers: slow, endless, huge, or malformed.

Each server is a thread on 127.0.0.1 that serves a bounded number of connections and gives up
by itself after a few seconds, so a test that fails cannot hang. Timings are asserted only as
generous safety nets (an answer "within 5 s" for a 0.5 s deadline); the assertion is the error.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from autostop_agent import httpget
from autostop_agent.comfyui import ComfyClient, ComfyError
from autostop_agent.imds import ImdsError, fetch_identity
from tests.agent.helpers import INSTANCE, PARAMETER, FakeClock, make_rig, spawn_agent_service

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 0.5
#: A hostile server stops by itself after this long, whatever the client does.
SERVER_LIFETIME = 8.0
OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"

Behaviour = Callable[[socket.socket, threading.Event], None]


def _drip(conn: socket.socket, stop: threading.Event, data: bytes, every: float = 0.02) -> None:
    for i in range(len(data)):
        if stop.wait(every):
            return
        conn.sendall(data[i : i + 1])


def trickle_body(conn: socket.socket, stop: threading.Event) -> None:
    """A valid /queue answer, one byte every 20 ms: 2.5 s for the whole body."""
    conn.sendall(OK_HEAD + b"\r\n")
    _drip(conn, stop, b'{"queue_running": [], "queue_pending": []}' + b" " * 80)


def trickle_headers(conn: socket.socket, stop: threading.Event) -> None:
    """A header line that never ends (each byte well within any per-read timeout)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    _drip(conn, stop, b"a" * 10_000)


def trickle_status_line(conn: socket.socket, stop: threading.Event) -> None:
    _drip(conn, stop, b"HTTP/1.1 200 OK" + b" " * 10_000)


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Accepts, reads the request, never answers."""
    stop.wait(SERVER_LIFETIME)


def huge_body(conn: socket.socket, stop: threading.Event) -> None:
    """10 MB of JSON-looking body, no Content-Length (read until the cap)."""
    conn.sendall(OK_HEAD + b"Connection: close\r\n\r\n[" + b"0," * 16)
    chunk = b"1," * 32768
    for _ in range(10 * 1024 * 1024 // len(chunk)):
        if stop.is_set():
            return
        conn.sendall(chunk)


def huge_content_length(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(OK_HEAD + b"Content-Length: 10485760\r\n\r\n{")
    stop.wait(SERVER_LIFETIME)


def endless_chunks(conn: socket.socket, stop: threading.Event) -> None:
    """Chunked encoding, a small chunk every 10 ms, never the last one."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    while not stop.wait(0.01):
        conn.sendall(b"1\r\n \r\n")


def short_body(conn: socket.socket, stop: threading.Event) -> None:
    """Content-Length promises more than is sent before the connection closes."""
    conn.sendall(OK_HEAD + b"Content-Length: 100\r\n\r\n{}")


class Hostile:
    def __init__(self, behaviour: Behaviour, connections: int = 8) -> None:
        self.behaviour = behaviour
        self.accepted = threading.Event()
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._connections = connections
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        ends = time.monotonic() + SERVER_LIFETIME
        served = 0
        while served < self._connections and time.monotonic() < ends and not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            served += 1
            self.accepted.set()
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1.0)
            try:
                conn.recv(65536)  # the request
                self.behaviour(conn, self.stop)
            except OSError:
                pass  # the client gave up: that is what these servers are for

    def close(self) -> None:
        self.stop.set()
        self._thread.join(5)
        self.listener.close()


@pytest.fixture
def hostile() -> Iterator[Callable[[Behaviour], Hostile]]:
    made: list[Hostile] = []

    def make(behaviour: Behaviour) -> Hostile:
        made.append(Hostile(behaviour))
        return made[-1]

    yield make
    for server in made:
        server.close()


SLOW = [trickle_body, trickle_headers, trickle_status_line, silent, endless_chunks]


@pytest.mark.parametrize("behaviour", SLOW, ids=lambda b: b.__name__)
def test_a_slow_comfyui_is_not_ready_within_the_deadline(
    hostile: Callable[[Behaviour], Hostile], behaviour: Behaviour
) -> None:
    server = hostile(behaviour)
    started = time.monotonic()
    with pytest.raises(ComfyError, match=rf"no complete answer within {DEADLINE:g} s"):
        ComfyClient(server.url, DEADLINE).queue()
    assert time.monotonic() - started < 5  # safety net, not a timing claim


@pytest.mark.parametrize(
    ("behaviour", "message"),
    [
        (huge_body, "exceeds"),
        (huge_content_length, "answer of 10485760 bytes exceeds"),
        (short_body, "98 bytes short of its length"),
    ],
    ids=["huge_body", "huge_content_length", "short_body"],
)
def test_a_huge_or_broken_answer_is_an_error(
    hostile: Callable[[Behaviour], Hostile], behaviour: Behaviour, message: str
) -> None:
    server = hostile(behaviour)
    with pytest.raises(ComfyError, match=message):
        ComfyClient(server.url, DEADLINE).system_stats()


def test_the_body_read_stops_at_the_cap(hostile: Callable[[Behaviour], Hostile]) -> None:
    server = hostile(huge_body)
    with pytest.raises(httpget.TooLarge, match="exceeds 1000 bytes"):
        httpget.request(server.url, "GET", "/x", headers={}, timeout=DEADLINE, limit=1000)


def test_a_request_ends_when_cancelled(hostile: Callable[[Behaviour], Hostile]) -> None:
    server = hostile(silent)
    cancel_at = time.monotonic() + 0.3
    started = time.monotonic()
    with pytest.raises(httpget.HttpError, match="cancelled"):
        httpget.request(
            server.url,
            "GET",
            "/queue",
            headers={},
            timeout=30,
            limit=1000,
            cancelled=lambda: time.monotonic() > cancel_at,
        )
    assert time.monotonic() - started < 5  # well before the 30 s deadline


def test_the_deadline_is_measured_on_the_injected_clock(hostile: Callable[[Behaviour], Hostile]) -> None:
    """Each look at the clock moves it 1 s: a 2.5 s deadline is spent after a few socket waits."""
    server = hostile(trickle_body)
    ticks = iter(range(1000))
    with pytest.raises(httpget.HttpError, match=r"within 2\.5 s"):
        httpget.request(
            server.url, "GET", "/q", headers={}, timeout=2.5, limit=1000, monotonic=lambda: float(next(ticks))
        )
    assert next(ticks) <= 10


@pytest.mark.parametrize(
    "behaviour", [trickle_body, trickle_headers, silent, huge_body], ids=lambda b: b.__name__
)
def test_a_hostile_imds_is_an_identity_error(
    hostile: Callable[[Behaviour], Hostile], behaviour: Behaviour
) -> None:
    server = hostile(behaviour)
    started = time.monotonic()
    with pytest.raises(ImdsError, match=r"within|exceeds"):
        fetch_identity(server.url, timeout=DEADLINE)
    assert time.monotonic() - started < 5


def test_the_loop_goes_on_against_a_trickling_comfyui(
    hostile: Callable[[Behaviour], Hostile], clock: FakeClock
) -> None:
    server = hostile(trickle_body)
    rig = make_rig(server, clock, {"COMFYUI_TIMEOUT_SECONDS": str(DEADLINE)})  # type: ignore[arg-type]
    for _ in range(3):
        rig.agent.step()
    assert rig.agent.failures == 3
    assert rig.agent.ready is False
    assert rig.agent.queue is None


def test_sigterm_ends_the_service_during_a_hung_request(
    hostile: Callable[[Behaviour], Hostile], tmp_path: Path
) -> None:
    """ComfyUI never answers and its deadline is 30 s: SIGTERM still ends the agent at once."""
    server = hostile(silent)
    env_file = tmp_path / "agent.env"
    env_file.write_text(
        f"COMFYUI_URL={server.url}\nCOMFYUI_TIMEOUT_SECONDS=30\nAGENT_STATE_PARAMETER={PARAMETER}\n"
        f"INSTANCE_ID={INSTANCE}\nAWS_REGION=us-east-1\nAGENT_LOCK_FILE={tmp_path / 'agent.lock'}\n"
        "AWS_ENDPOINT_URL=http://127.0.0.1:9\nAWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\n"
        "DETECT_SESSIONS=false\n"
    )
    proc, lines = spawn_agent_service(env_file)
    try:
        assert server.accepted.wait(20), "the agent never asked ComfyUI"
        time.sleep(0.3)  # the request is now waiting on the silent server
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - signalled < 10  # not the 30 s deadline
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(0.1)
    text = "".join(lines.get() for _ in range(lines.qsize()))
    assert "stopping" in text
    assert "Traceback" not in text


def test_sigterm_during_the_pause_between_polls_is_honoured_at_once() -> None:
    """The wait between polls is a select on the signal wakeup socket, not a sleep."""
    from autostop_agent.__main__ import StopSignal

    stop = StopSignal()
    old_term = signal.getsignal(signal.SIGTERM)
    old_int = signal.getsignal(signal.SIGINT)
    old_fd = signal.set_wakeup_fd(-1)
    try:
        stop.install()
        timer = threading.Timer(0.2, os.kill, args=(os.getpid(), signal.SIGTERM))
        timer.start()
        started = time.monotonic()
        stop.wait(30)
        waited = time.monotonic() - started
        timer.join()
    finally:
        signal.set_wakeup_fd(old_fd)
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
    assert stop()
    assert stop.signum == signal.SIGTERM
    assert waited < 5  # safety net: the wait was 30 s
