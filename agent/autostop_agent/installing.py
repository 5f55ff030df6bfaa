"""The first-boot install phase: the bootstrap's marker file, and the last resort for a stuck install.

The bootstrap (terraform/modules/instance/files/bootstrap.sh) writes INSTALL_MARKER before it
installs ComfyUI, with the install's start time (ISO-8601 UTC) as its content, keeps it across
reboots until the install has succeeded, then removes it. While it exists the agent reports the
phase "installing" (record v2), and counts the machine as busy: the idle self-stop never fires
under an install. Instead, the install guard stops the machine once this agent has watched the
install phase for INSTALL_TIMEOUT_MINUTES + 10 minutes (the stop function's own limit is
INSTALL_TIMEOUT_MINUTES; this is the line behind it), with the self-stop's other safety rules:
never within the boot grace, never with a session open, at most once per RETRY_SECONDS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from autostop_contract import parse_time

from autostop_agent.selfstop import RETRY_SECONDS, Decision

log = logging.getLogger(__name__)

#: Minutes the agent's last resort waits beyond the stop function's INSTALL_TIMEOUT_MINUTES.
GUARD_MARGIN_MINUTES = 10.0
#: The marker holds one timestamp; anything longer is not what the bootstrap wrote.
MAX_MARKER_BYTES = 100


@dataclass(frozen=True)
class InstallPhase:
    installing: bool = False
    #: When the install began (the marker's content); None when absent or not a valid time.
    started_at: datetime | None = None

    @property
    def name(self) -> str:
        return "installing" if self.installing else "serving"


SERVING = InstallPhase()


def read_marker(path: str) -> InstallPhase:
    """The phase the marker file says. A marker that exists but cannot be read or parsed still
    means "installing" (the bootstrap writes it only then); only its start time is distrusted."""
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_MARKER_BYTES + 1)
    except FileNotFoundError:
        return SERVING
    except OSError as exc:
        log.warning("install marker %s exists but cannot be read (%s): reporting installing", path, exc)
        return InstallPhase(installing=True)
    text = data.decode("utf-8", errors="replace").strip() if len(data) <= MAX_MARKER_BYTES else ""
    started = parse_time(text) if text.endswith("Z") else None
    if started is None:
        log.warning("install marker %s does not hold an ISO-8601 UTC time: start time unknown", path)
    return InstallPhase(installing=True, started_at=started)


class InstallGuard:
    """Decides the last-resort stop of a stuck install, on the monotonic clock (a reboot or an agent
    restart starts the watch again: the agent vouches only for what it saw)."""

    def __init__(self, *, timeout_minutes: float, boot_grace_minutes: float, enabled: bool) -> None:
        self.limit_seconds = (timeout_minutes + GUARD_MARGIN_MINUTES) * 60.0
        self.grace_seconds = boot_grace_minutes * 60.0
        self.enabled = enabled
        self._since: float | None = None
        self._fired_at: float | None = None

    def decide(self, *, mono: float, installing: bool, uptime: float | None, sessions: int) -> Decision:
        if not installing:
            self._since = None
            return Decision(False, "not installing")
        if self._since is None:
            self._since = mono
        watched = mono - self._since
        if not self.enabled:
            return Decision(False, "self-stop disabled", watched)
        if uptime is None or uptime < self.grace_seconds:
            return Decision(False, "boot grace", watched)
        if sessions > 0:
            return Decision(False, f"{sessions} session(s) open", watched)
        if watched < self.limit_seconds:
            return Decision(
                False, f"installing {watched / 60:.1f} of {self.limit_seconds / 60:g} minutes", watched
            )
        if self._fired_at is not None and mono - self._fired_at < RETRY_SECONDS:
            return Decision(False, "shutdown already requested", watched)
        self._fired_at = mono
        return Decision(
            True,
            f"the first-boot install has not finished after {watched / 60:.1f} minutes "
            f"(limit {self.limit_seconds / 60:g}; see journalctl -u gpu-autostop-bootstrap)",
            watched,
        )
