"""A small, defensive ComfyUI HTTP client (stdlib ``http.client``).

``http.client`` rather than ``urllib.request``: no proxy environment variables
can reroute the loopback poll, and less is imported. Every call has a total
deadline and a size cap; any failure (refused, timeout, HTTP error, HTML,
garbage, wrong shape) raises ComfyError, which the agent counts as "did not
answer".
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

#: Largest /queue body parsed (each queued prompt carries its whole graph). Beyond
#: it the depth is read from GET /prompt, whose answer is a single counter.
MAX_QUEUE_BYTES = 4 * 1024 * 1024
MAX_SMALL_BYTES = 256 * 1024


class ComfyError(Exception):
    """ComfyUI did not give a usable answer."""


class NotSupported(ComfyError):
    """The endpoint does not exist on this ComfyUI (HTTP 404)."""


class TooLarge(ComfyError):
    """The answer is larger than the cap."""


@dataclass(frozen=True)
class QueueState:
    running: int
    pending: int
    #: Prompt ids seen (running and pending); empty when the depth came from GET /prompt.
    prompt_ids: frozenset[str] = frozenset()

    @property
    def depth(self) -> int:
        return self.running + self.pending


class ComfyClient:
    def __init__(
        self, base_url: str, timeout: float, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        # Real monotonic time: this bounds a socket read, not the agent's schedule.
        self._monotonic = monotonic

    def _get(self, path: str, limit: int) -> bytes:
        conn_type = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = conn_type(self._host, self._port, timeout=self._timeout)
        deadline = self._monotonic() + self._timeout
        try:
            conn.request("GET", self._prefix + path, headers={"Accept": "application/json"})
            response = conn.getresponse()
            if response.status == 404:
                raise NotSupported(f"GET {path}: HTTP 404")
            if response.status != 200:
                raise ComfyError(f"GET {path}: HTTP {response.status}")
            length = response.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) > limit:
                raise TooLarge(f"GET {path}: answer of {length} bytes exceeds {limit}")
            chunks: list[bytes] = []
            size = 0
            while True:
                if self._monotonic() > deadline:
                    raise ComfyError(f"GET {path}: answer slower than {self._timeout:g} s")
                chunk = response.read(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"GET {path}: answer exceeds {limit} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
        except ComfyError:
            raise
        except (OSError, http.client.HTTPException) as exc:
            raise ComfyError(f"GET {path}: {type(exc).__name__}: {exc}") from None
        finally:
            conn.close()

    def _get_json(self, path: str, limit: int = MAX_SMALL_BYTES) -> Any:
        body = self._get(path, limit)
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            start = body[:40].decode("utf-8", "replace").strip()
            raise ComfyError(f"GET {path}: not JSON (starts with {start!r})") from None

    def system_stats(self) -> dict[str, Any]:
        """GET /system_stats; raises unless it is ComfyUI's answer (an object with ``system``)."""
        data = self._get_json("/system_stats")
        if not isinstance(data, dict) or not isinstance(data.get("system"), dict):
            raise ComfyError("GET /system_stats: not a ComfyUI answer (no 'system' object)")
        return data

    def queue(self) -> QueueState:
        """GET /queue: running and pending prompts (GET /prompt when the queue is very large)."""
        try:
            data = self._get_json("/queue", MAX_QUEUE_BYTES)
        except TooLarge:
            return self._queue_from_prompt()
        if not isinstance(data, dict):
            raise ComfyError("GET /queue: not a JSON object")
        running, pending = data.get("queue_running"), data.get("queue_pending")
        if not isinstance(running, list) or not isinstance(pending, list):
            raise ComfyError("GET /queue: missing queue_running / queue_pending lists")
        ids = frozenset(
            item[1]
            for item in running + pending
            if isinstance(item, list) and len(item) > 1 and isinstance(item[1], str)
        )
        return QueueState(running=len(running), pending=len(pending), prompt_ids=ids)

    def _queue_from_prompt(self) -> QueueState:
        data = self._get_json("/prompt")
        info = data.get("exec_info") if isinstance(data, dict) else None
        remaining = info.get("queue_remaining") if isinstance(info, dict) else None
        if not isinstance(remaining, int) or isinstance(remaining, bool) or remaining < 0:
            raise ComfyError("GET /prompt: no exec_info.queue_remaining")
        running = min(remaining, 1)
        return QueueState(running=running, pending=remaining - running)

    def completed_total(self) -> int:
        """Prompts ComfyUI holds as completed: GET /api/jobs?status=completed (pagination total).

        Raises NotSupported on a ComfyUI without the jobs API.
        """
        data = self._get_json("/api/jobs?status=completed&limit=1&offset=0")
        pagination = data.get("pagination") if isinstance(data, dict) else None
        total = pagination.get("total") if isinstance(pagination, dict) else None
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise ComfyError("GET /api/jobs: no pagination.total")
        return total
