"""Interactive use of the machine, found by one scan of /proc.

- SSH logins with a terminal: the OpenSSH session process titled
  ``sshd: USER@pts/N`` (``sshd-session: ...`` from OpenSSH 9.8). Non-terminal
  SSH connections (``@notty``: port forwards, scp) do not count, so a tunnel
  left open to ComfyUI does not keep the machine up.
- SSM Session Manager: one ``ssm-session-worker`` process per session.
- tmux and screen servers (``tmux: server``, ``SCREEN``): work left running in a
  detached terminal keeps the machine.
- Processes whose command line matches ACTIVITY_PROCESS_REGEX (training,
  inference scripts); a matched process whose parent also matched counts once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_SSH_TTY = re.compile(r"^sshd(?:-session)?: \S+@pts/\d+")


@dataclass(frozen=True)
class Sessions:
    ssh: int = 0
    ssm: int = 0
    multiplexers: int = 0
    processes: int = 0

    @property
    def total(self) -> int:
        return self.ssh + self.ssm + self.multiplexers + self.processes

    def as_dict(self) -> dict[str, int]:
        return {
            "ssh": self.ssh,
            "ssm": self.ssm,
            "tmux_screen": self.multiplexers,
            "processes": self.processes,
        }


def _read(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            data = handle.read(4096)
    except OSError:
        return None
    return data.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def _parent(proc: Path, pid: str) -> str | None:
    stat = _read(proc / pid / "stat")
    if stat is None:
        return None
    fields = stat.rpartition(")")[2].split()
    return fields[1] if len(fields) > 1 else None


def scan(
    proc_root: str = "/proc", activity_regex: re.Pattern[str] | None = None, own_pid: int | None = None
) -> Sessions:
    proc = Path(proc_root)
    own = str(os.getpid() if own_pid is None else own_pid)
    try:
        pids = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        return Sessions()
    ssh = ssm = multiplexers = 0
    matched: list[str] = []
    for pid in pids:
        if pid == own:
            continue
        comm = _read(proc / pid / "comm")
        if comm is None:  # exited meanwhile
            continue
        needs_cmdline = activity_regex is not None or comm.startswith(("sshd", "tmux", "ssm-session"))
        cmdline = _read(proc / pid / "cmdline") if needs_cmdline else None
        if comm.startswith("sshd"):
            if cmdline and _SSH_TTY.match(cmdline):
                ssh += 1
        elif comm.startswith("ssm-session-wor"):  # comm is cut at 15 characters
            ssm += 1
        elif comm == "SCREEN" or (comm.startswith("tmux") and cmdline and cmdline.startswith("tmux: server")):
            multiplexers += 1
        if activity_regex is not None and cmdline and activity_regex.search(cmdline):
            matched.append(pid)
    processes = 0
    if matched:
        chosen = set(matched)
        processes = sum(1 for pid in matched if _parent(proc, pid) not in chosen)
    return Sessions(ssh=ssh, ssm=ssm, multiplexers=multiplexers, processes=processes)
