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
from datetime import UTC, datetime
from typing import Any

from autostop_agent import httpget

#: Largest /queue body parsed (each queued prompt carries its whole graph). Beyond
#: it the depth is read from GET /prompt, whose answer is a single counter.
MAX_QUEUE_BYTES = 4 * 1024 * 1024
MAX_SMALL_BYTES = 256 * 1024
#: Prompts read from GET /history per poll (the newest ones; ComfyUI itself keeps 10000), and the
#: largest answer parsed (each entry carries its prompt's whole graph and outputs).
MAX_HISTORY_ITEMS = 64
MAX_HISTORY_BYTES = 8 * 1024 * 1024
#: Longest prompt id kept (ComfyUI's are UUIDs, 36 characters).
MAX_PROMPT_ID = 128
#: Plausible execution timestamps, epoch milliseconds (2001 to 2286): anything else is ignored.
_TIMESTAMP_MS = (1e12, 1e13)


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


class TooLarge(ComfyError):
    """The answer is larger than the cap."""


@dataclass(frozen=True)
class QueueState:
    running: int
    pending: int

    @property
    def depth(self) -> int:
        return self.running + self.pending


@dataclass(frozen=True)
class Finished:
    """One prompt in ComfyUI's history: it ran and finished (succeeded, failed or was interrupted)."""

    prompt_id: str
    #: ``status.completed`` is true: the prompt ran to the end (what images_completed counts).
    success: bool
    #: The latest ``timestamp`` in ``status.messages`` (execution_start / _success / _error /
    #: _interrupted, epoch ms); None when there is none that is plausible.
    ended_at: datetime | None


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

    def history(self, max_items: int = MAX_HISTORY_ITEMS) -> tuple[Finished, ...]:
        """GET /history?max_items=N: the N prompts ComfyUI finished last, oldest first."""
        return finished_prompts(self._get_json(f"/history?max_items={max_items}", MAX_HISTORY_BYTES))


def queue_state(data: Any) -> QueueState:
    """GET /queue's answer: ``{"queue_running": [item, ...], "queue_pending": [...]}``, item =
    ``[number, prompt_id, graph, extra_data, outputs]`` (only counted)."""
    if not isinstance(data, dict):
        raise ComfyError("GET /queue: not a JSON object")
    running, pending = data.get("queue_running"), data.get("queue_pending")
    if not isinstance(running, list) or not isinstance(pending, list):
        raise ComfyError("GET /queue: missing queue_running / queue_pending lists")
    return QueueState(running=len(running), pending=len(pending))


def prompt_counter(data: Any) -> QueueState:
    """GET /prompt's answer: ``{"exec_info": {"queue_remaining": n}}`` (running + pending)."""
    info = data.get("exec_info") if isinstance(data, dict) else None
    remaining = info.get("queue_remaining") if isinstance(info, dict) else None
    if not isinstance(remaining, int) or isinstance(remaining, bool) or remaining < 0:
        raise ComfyError("GET /prompt: no exec_info.queue_remaining")
    running = min(remaining, 1)
    return QueueState(running=running, pending=remaining - running)


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not _TIMESTAMP_MS[0] <= value <= _TIMESTAMP_MS[1]:  # also rejects NaN
        return None
    return datetime.fromtimestamp(value / 1000, UTC)


def _ended_at(status: Any) -> datetime | None:
    messages = status.get("messages") if isinstance(status, dict) else None
    if not isinstance(messages, list):
        return None
    times = [
        _timestamp(message[1].get("timestamp"))
        for message in messages
        if isinstance(message, list) and len(message) == 2 and isinstance(message[1], dict)
    ]
    return max((t for t in times if t is not None), default=None)


def finished_prompts(data: Any) -> tuple[Finished, ...]:
    """GET /history's answer: ``{prompt_id: {"prompt", "outputs", "status": {"status_str",
    "completed", "messages": [[event, {"timestamp": ms, ...}], ...]}, "meta"}}``, oldest first.

    An entry that is not an object, whose ``status`` is not ``{"completed": bool, "messages": list,
    ...}`` (or, without ``status``, has no ``outputs`` object), or whose id is too long, is left
    out: it is not evidence that anything ran. Messages and timestamps that do not validate are
    skipped one by one (no time then, the prompt still counts).
    """
    if not isinstance(data, dict):
        raise ComfyError("GET /history: not a JSON object")
    found = []
    for prompt_id, entry in data.items():
        if len(prompt_id) > MAX_PROMPT_ID or not isinstance(entry, dict):
            continue
        status = entry.get("status")
        if status is None:  # a ComfyUI from before the status field: outputs only
            if not isinstance(entry.get("outputs"), dict):
                continue
        elif not (
            isinstance(status, dict)
            and isinstance(status.get("completed"), bool)
            and isinstance(status.get("messages"), list)
        ):
            continue
        success = status.get("completed") is True if status is not None else True
        found.append(Finished(prompt_id=prompt_id, success=success, ended_at=_ended_at(status)))
    return tuple(found)
