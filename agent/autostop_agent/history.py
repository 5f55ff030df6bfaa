"""Work ComfyUI finished between two polls, from its history (GET /history?max_items=N).

A prompt that runs in 0.13 s is never seen in GET /queue polled every 5 s; it is
seen in the history, which every supported ComfyUI keeps (with or without
/api/jobs). Each read is compared with the prompts already seen: a prompt not
seen before finished since the last read. Prompts are keyed by id and end time,
so a ComfyUI restart (its history starts empty, new prompts get new ids) neither
loses the count so far nor counts anything twice.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from autostop_agent.comfyui import Finished

log = logging.getLogger(__name__)

#: Prompts remembered, as a multiple of the window read: enough that prompts deleted from the
#: history (POST /history {"delete": ...}) do not bring older, already counted ones back as new.
REMEMBER_WINDOWS = 4


@dataclass(frozen=True)
class NewWork:
    #: Prompts that finished since the previous read (0 on the first read: no previous one).
    finished: int
    #: The latest end time among prompts not seen before, never later than ``now``.
    latest: datetime | None


class CompletedWork:
    def __init__(self, window: int) -> None:
        self.window = window
        #: Prompts that ran to the end, counted once each: images_completed.
        self.completed = 0
        self._seen: OrderedDict[tuple[str, datetime | None], None] = OrderedDict()
        self._first = True

    def update(self, entries: Sequence[Finished], now: datetime) -> NewWork:
        """Take one read of the history (oldest first, at most ``window`` entries)."""
        fresh = []
        for entry in entries:
            key = (entry.prompt_id, entry.ended_at)
            if key not in self._seen:
                self._seen[key] = None
                fresh.append(entry)
        while len(self._seen) > REMEMBER_WINDOWS * self.window:
            self._seen.popitem(last=False)
        self.completed += sum(1 for e in fresh if e.success)
        first, self._first = self._first, False
        if not first and fresh and len(fresh) >= self.window:
            log.warning(
                "%d or more prompts finished since the last poll; images_completed may be low", self.window
            )
        # A clock ahead of ours, or a made-up time, must not put activity in the future.
        times = [min(e.ended_at, now) for e in fresh if e.ended_at is not None]
        return NewWork(finished=0 if first else len(fresh), latest=max(times, default=None))
