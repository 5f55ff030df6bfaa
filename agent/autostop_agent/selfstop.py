"""The last line of defence: stop the machine from inside when the control plane has not.

Rules, all of which must hold (README, "Self-stop safety rules"):
- enabled (SELF_STOP_MINUTES > 0; default IDLE_MINUTES + 10);
- the machine has been up for at least BOOT_GRACE_MINUTES;
- nothing busy and no session in this reading, nor in the last SELF_STOP_CHECKS
  readings in a row;
- idle, as observed by this agent, for SELF_STOP_MINUTES on the monotonic clock.
  Idle time starts when the agent starts (it cannot vouch for time before) and
  restarts after any busy reading, any session, or a gap between readings longer
  than GAP_SECONDS (agent stalled: it did not look, so it does not count).
After firing, it does not fire again for RETRY_SECONDS (the command may fail).
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

GAP_SECONDS = 120.0
RETRY_SECONDS = 300.0


@dataclass(frozen=True)
class Decision:
    stop: bool
    reason: str
    idle_seconds: float = 0.0


def run_command(command: Sequence[str]) -> int:
    """Run the shutdown command (no shell); its exit status, or -1 when it could not run."""
    try:
        return subprocess.run(list(command), check=False, timeout=120).returncode
    except (OSError, subprocess.SubprocessError) as exc:
        log.error("self-stop: %s could not run: %s", " ".join(command), exc)
        return -1


class SelfStop:
    def __init__(
        self,
        *,
        minutes: float,
        checks: int,
        boot_grace_minutes: float,
        command: Sequence[str],
        runner: Callable[[Sequence[str]], int] = run_command,
    ) -> None:
        self.limit_seconds = minutes * 60.0
        self.checks = checks
        self.grace_seconds = boot_grace_minutes * 60.0
        self.command = tuple(command)
        self._runner = runner
        self._idle_since: float | None = None
        self._last_seen: float | None = None
        self.consecutive = 0
        self._fired_at: float | None = None

    def decide(self, *, mono: float, uptime: float | None, busy: bool, sessions: int) -> Decision:
        """Record one reading and say whether to stop now (pure apart from this object's state)."""
        gap = self._last_seen is not None and mono - self._last_seen > GAP_SECONDS
        self._last_seen = mono
        if busy or sessions > 0 or gap or self._idle_since is None:
            self._idle_since = mono
            self.consecutive = 0
            if busy or sessions > 0:
                return Decision(False, "busy" if busy else f"{sessions} session(s) open")
        self.consecutive += 1
        idle = mono - self._idle_since
        if self.limit_seconds <= 0:
            return Decision(False, "self-stop disabled", idle)
        if uptime is None or uptime < self.grace_seconds:
            return Decision(False, "boot grace", idle)
        if idle < self.limit_seconds:
            return Decision(False, f"idle {idle / 60:.1f} of {self.limit_seconds / 60:g} minutes", idle)
        if self.consecutive < self.checks:
            return Decision(False, f"idle check {self.consecutive} of {self.checks}", idle)
        if self._fired_at is not None and mono - self._fired_at < RETRY_SECONDS:
            return Decision(False, "shutdown already requested", idle)
        return Decision(True, f"idle for {idle / 60:.1f} minutes (limit {self.limit_seconds / 60:g})", idle)

    def fire(self, mono: float, decision: Decision) -> int:
        self._fired_at = mono
        log.warning(
            "SELF-STOP: %s and the control plane has not stopped the machine; running: %s",
            decision.reason,
            " ".join(self.command),
        )
        status = self._runner(self.command)
        if status != 0:
            log.error(
                "self-stop command exited with %s; retrying in %gs if still idle", status, RETRY_SECONDS
            )
        return status
