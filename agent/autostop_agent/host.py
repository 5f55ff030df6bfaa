"""CPU, memory, boot time and uptime from /proc (no psutil: less to install, a smaller process)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path


class Host:
    def __init__(
        self, monotonic: Callable[[], float], *, proc_root: str = "/proc", window_seconds: float = 60.0
    ):
        self._proc = Path(proc_root)
        self._monotonic = monotonic
        self._window = window_seconds
        #: (monotonic time, busy jiffies, total jiffies)
        self._samples: deque[tuple[float, int, int]] = deque()

    def _cpu_counters(self) -> tuple[int, int] | None:
        try:
            with (self._proc / "stat").open(encoding="ascii") as stat:
                first = stat.readline().split()
        except OSError:
            return None
        if not first or first[0] != "cpu":
            return None
        try:
            values = [int(v) for v in first[1:]]
        except ValueError:
            return None
        # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
        values = values[:8]
        if len(values) < 4:
            return None
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        total = sum(values)
        return total - idle, total

    def cpu_percent(self) -> float | None:
        """Whole-machine CPU use (% of all cores) averaged over the last ``window_seconds``.

        None until two samples exist (the first call only takes a sample).
        """
        counters = self._cpu_counters()
        if counters is None:
            return None
        now = self._monotonic()
        self._samples.append((now, *counters))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self._window:
            self._samples.popleft()
        _, busy0, total0 = self._samples[0]
        _, busy1, total1 = self._samples[-1]
        if total1 <= total0:
            return None
        return round(100.0 * (busy1 - busy0) / (total1 - total0), 1)

    def memory_percent(self) -> float | None:
        """Memory in use: 100 * (1 - MemAvailable / MemTotal)."""
        fields: dict[str, int] = {}
        try:
            with (self._proc / "meminfo").open(encoding="ascii") as meminfo:
                for line in meminfo:
                    key, _, rest = line.partition(":")
                    if key in ("MemTotal", "MemAvailable"):
                        fields[key] = int(rest.split()[0])
        except (OSError, ValueError, IndexError):
            return None
        total, available = fields.get("MemTotal"), fields.get("MemAvailable")
        if not total or available is None:
            return None
        return round(100.0 * (1 - available / total), 1)

    def boot_time(self) -> datetime | None:
        """The kernel's boot time (``btime`` of /proc/stat), i.e. the real start of this boot."""
        try:
            with (self._proc / "stat").open(encoding="ascii") as stat:
                for line in stat:
                    if line.startswith("btime "):
                        return datetime.fromtimestamp(int(line.split()[1]), UTC)
        except (OSError, ValueError, IndexError):
            return None
        return None

    def uptime_seconds(self) -> float | None:
        try:
            return float((self._proc / "uptime").read_text(encoding="ascii").split()[0])
        except (OSError, ValueError, IndexError):
            return None
