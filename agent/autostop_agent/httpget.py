"""One HTTP request with a total deadline and a size cap (stdlib ``http.client``), for ComfyUI and IMDS.

``http.client``'s ``timeout`` bounds each socket operation, not the request: a
server that sends one byte a second, or header lines without end, keeps a read
alive forever. Here every send and receive gets the time left until one
deadline (connect, request, headers and body together), and the body is read
only up to ``limit`` bytes. Waits are cut into slices of at most SLICE_SECONDS
so that ``cancelled()`` (the agent stopping on SIGTERM) ends a request
promptly. Any failure raises HttpError.

Known gaps: the TCP connect is one wait of the time left (not sliced), so a host
that never answers (no IMDS) is given up only at the deadline; an HTTPS handshake
(ComfyUI behind TLS) is bounded only per socket operation, by the time left at
connect. The loopback ComfyUI and IMDS are plain HTTP.
"""

from __future__ import annotations

import functools
import http.client
import io
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

#: Longest single wait on the socket before the deadline and ``cancelled()`` are looked at again.
SLICE_SECONDS = 0.25


class HttpError(Exception):
    """No usable answer: refused, reset, too slow, cancelled, malformed or too large."""


class TooLarge(HttpError):
    """The body is larger than the cap."""


@dataclass(frozen=True)
class Answer:
    status: int
    #: The body of a 2xx answer (at most ``limit`` bytes); empty for any other status (not read).
    body: bytes


class _Deadline:
    def __init__(self, seconds: float, monotonic: Callable[[], float], cancelled: Callable[[], bool]) -> None:
        self.seconds = seconds
        self._monotonic = monotonic
        self._cancelled = cancelled
        self._end = monotonic() + seconds

    def left(self) -> float:
        """Seconds left; raises once the deadline has passed or the request is cancelled."""
        if self._cancelled():
            raise HttpError("cancelled (the agent is stopping)")
        left = self._end - self._monotonic()
        if left <= 0:
            raise HttpError(f"no complete answer within {self.seconds:g} s")
        return left


class _DeadlineSocket:
    """The connected socket as http.client uses it (sendall, makefile, close), bound to a deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def _wait(self, operation: Callable[[], Any]) -> Any:
        while True:
            self._sock.settimeout(min(self._deadline.left(), SLICE_SECONDS))
            try:
                return operation()
            except TimeoutError:
                continue  # a slice ran out: look at the deadline and cancellation again

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            sent: int = self._wait(functools.partial(self._sock.send, view))
            view = view[sent:]

    def recv_into(self, buffer: memoryview) -> int:
        count: int = self._wait(functools.partial(self._sock.recv_into, buffer))
        return count

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_Reader(self))

    def setsockopt(self, *args: Any) -> None:
        self._sock.setsockopt(*args)

    def close(self) -> None:
        """Nothing: http.client closes its socket when the answer says ``Connection: close``, before
        the body is read; request() closes the real one when it is done."""

    def close_socket(self) -> None:
        self._sock.close()


class _Reader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(memoryview(buffer).cast("B"))


def _connect(base_url: str, deadline: _Deadline) -> tuple[http.client.HTTPConnection, _DeadlineSocket]:
    parts = urlsplit(base_url)
    https = parts.scheme == "https"
    kind = http.client.HTTPSConnection if https else http.client.HTTPConnection
    conn = kind(parts.hostname or "127.0.0.1", parts.port or (443 if https else 80), timeout=deadline.left())
    conn.connect()
    sock = _DeadlineSocket(conn.sock, deadline)
    conn.sock = sock
    return conn, sock


def request(
    base_url: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    timeout: float,
    limit: int,
    monotonic: Callable[[], float] = time.monotonic,
    cancelled: Callable[[], bool] = lambda: False,
) -> Answer:
    """``method path`` on ``base_url`` (its path is a prefix), all of it within ``timeout`` seconds.

    ``monotonic`` is real monotonic time: this bounds a socket read, not the agent's schedule.
    """
    deadline = _Deadline(timeout, monotonic, cancelled)
    prefix = urlsplit(base_url).path.rstrip("/")
    sock: _DeadlineSocket | None = None
    try:
        conn, sock = _connect(base_url, deadline)
        conn.request(method, prefix + path, headers=headers)
        response = conn.getresponse()
        if not 200 <= response.status < 300:
            return Answer(response.status, b"")
        length = response.getheader("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            raise TooLarge(f"{method} {path}: answer of {length.strip()} bytes exceeds {limit}")
        body = response.read(limit + 1)
        if len(body) > limit:
            raise TooLarge(f"{method} {path}: answer exceeds {limit} bytes")
        if response.length:  # read(amt) returns a body cut short by a closed connection as it is
            raise HttpError(f"{method} {path}: answer ended {response.length} bytes short of its length")
        return Answer(response.status, body)
    except TooLarge:
        raise
    except HttpError as exc:
        raise HttpError(f"{method} {path}: {exc}") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise HttpError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
    finally:
        if sock is not None:
            sock.close_socket()
