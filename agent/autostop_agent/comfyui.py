"""A small, defensive ComfyUI HTTP client (stdlib ``http.client``).

``http.client`` (through httpget) rather than ``urllib.request``: no proxy
environment variables can reroute the loopback poll, and less is imported.
Every call has a total deadline (connect, headers and body together) and a
size cap; any failure (refused, too slow, HTTP error, HTML, garbage, JSON too
deep, wrong shape) raises ComfyError, which the agent counts as "did not answer".
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autostop_agent import httpget

#: Largest /queue body parsed (each queued prompt carries its whole graph). Beyond
#: it the depth is read from GET /prompt, whose answer is a single counter.
MAX_QUEUE_BYTES = 4 * 1024 * 1024
MAX_SMALL_BYTES = 256 * 1024


class ComfyError(Exception):
    """ComfyUI did not give a usable answer."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes, what: str) -> Any:
    """``body`` as JSON, or ComfyError: not UTF-8, not JSON, NaN/Infinity, a number of more than 4300
    digits (Python's int limit), or nested too deep for the parser (RecursionError)."""
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        start = body[:40].decode("utf-8", "replace").strip()
        raise ComfyError(f"{what}: not JSON (starts with {start!r})") from None


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
        self,
        base_url: str,
        timeout: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        self._base_url = base_url
        self._timeout = timeout
        # Real monotonic time: this bounds a socket read, not the agent's schedule.
        self._monotonic = monotonic
        self._cancelled = cancelled

    def _get(self, path: str, limit: int) -> bytes:
        try:
            answer = httpget.request(
                self._base_url,
                "GET",
                path,
                headers={"Accept": "application/json"},
                timeout=self._timeout,
                limit=limit,
                monotonic=self._monotonic,
                cancelled=self._cancelled,
            )
        except httpget.TooLarge as exc:
            raise TooLarge(str(exc)) from None
        except httpget.HttpError as exc:
            raise ComfyError(str(exc)) from None
        if answer.status == 404:
            raise NotSupported(f"GET {path}: HTTP 404")
        if answer.status != 200:
            raise ComfyError(f"GET {path}: HTTP {answer.status}")
        return answer.body

    def _get_json(self, path: str, limit: int = MAX_SMALL_BYTES) -> Any:
        return parse_json(self._get(path, limit), f"GET {path}")

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
            return prompt_counter(self._get_json("/prompt"))
        return queue_state(data)

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


def queue_state(data: Any) -> QueueState:
    """GET /queue's answer: ``{"queue_running": [item, ...], "queue_pending": [...]}``, item =
    ``[number, prompt_id, graph, extra_data, outputs]``; ids that are not strings are left out."""
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


def prompt_counter(data: Any) -> QueueState:
    """GET /prompt's answer: ``{"exec_info": {"queue_remaining": n}}`` (running + pending)."""
    info = data.get("exec_info") if isinstance(data, dict) else None
    remaining = info.get("queue_remaining") if isinstance(info, dict) else None
    if not isinstance(remaining, int) or isinstance(remaining, bool) or remaining < 0:
        raise ComfyError("GET /prompt: no exec_info.queue_remaining")
    running = min(remaining, 1)
    return QueueState(running=running, pending=remaining - running)
