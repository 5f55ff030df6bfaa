"""Sessions, CPU/memory/boot time from a fake /proc, and NVML through a fake pynvml."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from autostop_agent.gpu import NvmlGpu
from autostop_agent.host import Host
from autostop_agent.sessions import Sessions, scan


def _proc(root: Path, pid: int, comm: str, cmdline: str, ppid: int = 1) -> None:
    d = root / str(pid)
    d.mkdir(parents=True)
    (d / "comm").write_text(comm + "\n")
    (d / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode() + b"\0" if cmdline else b"")
    (d / "stat").write_text(f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 0 0 0 0\n")


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    _proc(root, 1, "systemd", "/sbin/init")
    _proc(root, 2, "kthreadd", "")
    _proc(root, 700, "sshd", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups")
    _proc(root, 801, "sshd", "sshd: ubuntu [priv]")
    (root / "802").mkdir()
    (root / "802" / "comm").write_text("sshd\n")
    (root / "802" / "cmdline").write_bytes(
        b"sshd: ubuntu@pts/0" + b"\0" * 10
    )  # proctitle is padded with NULs
    _proc(root, 803, "sshd-session", "sshd-session: ubuntu@pts/1")
    _proc(root, 804, "sshd", "sshd: ubuntu@notty")  # a tunnel: does not count
    _proc(root, 900, "amazon-ssm-agen", "/usr/bin/amazon-ssm-agent")
    _proc(root, 901, "ssm-session-wor", "/usr/bin/ssm-session-worker ubuntu-0a1b2c i-0123")
    _proc(root, 1000, "tmux: server", "tmux: server (/tmp/tmux-1000/default)")
    _proc(root, 1001, "tmux: client", "tmux attach")
    _proc(root, 1100, "SCREEN", "SCREEN -S train")
    _proc(root, 1101, "screen", "screen -r train")
    _proc(root, 1200, "python", "python /opt/ComfyUI/main.py --listen 0.0.0.0")
    _proc(root, 1300, "python", "python train.py --epochs 3")
    _proc(root, 1301, "pt_data_worker", "python train.py --epochs 3", ppid=1300)  # a worker of the same job
    _proc(root, 1400, "python", "python -m autostop_agent")
    (root / "stat").write_text("cpu  100 0 100 800 0 0 0 0 0 0\nbtime 1795392003\n")
    return root


def test_sessions_of_every_kind(proc: Path) -> None:
    found = scan(str(proc), re.compile(r"train\.py|autostop_agent"), own_pid=1400)
    assert found == Sessions(ssh=2, ssm=1, multiplexers=2, processes=1)
    assert found.total == 6
    assert found.as_dict() == {"ssh": 2, "ssm": 1, "tmux_screen": 2, "processes": 1}


def test_no_pattern_no_processes_and_comfyui_is_not_a_session(proc: Path) -> None:
    assert scan(str(proc), None, own_pid=1400).processes == 0
    assert scan(str(proc), re.compile("nothing-matches"), own_pid=1400).processes == 0


def test_idle_machine_and_unreadable_proc(tmp_path: Path) -> None:
    root = tmp_path / "proc"
    _proc(root, 1, "systemd", "/sbin/init")
    _proc(root, 700, "sshd", "sshd: /usr/sbin/sshd -D")
    assert scan(str(root)).total == 0
    assert scan(str(tmp_path / "missing")).total == 0


def test_scan_of_the_real_proc_does_not_fail() -> None:
    assert scan("/proc", re.compile("pytest")).processes >= 0


def test_cpu_percent_over_a_window(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    t = [0.0]
    host = Host(lambda: t[0], proc_root=str(tmp_path), window_seconds=60)
    stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\n")
    assert host.cpu_percent() is None  # one sample is not a rate
    t[0] = 5
    stat.write_text("cpu  150 0 150 900 0 0 0 0 0 0\n")  # +100 busy of +200
    assert host.cpu_percent() == 50.0
    for i in range(2, 30):  # then idle for a long while: the busy moment leaves the window
        t[0] = 5.0 * i
        stat.write_text(f"cpu  150 0 150 {900 + 100 * (i - 1)} 0 0 0 0 0 0\n")
        value = host.cpu_percent()
    assert value == 0.0


def test_memory_boot_time_and_uptime(tmp_path: Path, proc: Path) -> None:
    (proc / "meminfo").write_text("MemTotal:       16000000 kB\nMemFree: 1 kB\nMemAvailable:   12000000 kB\n")
    (proc / "uptime").write_text("1234.56 4000.00\n")
    host = Host(lambda: 0.0, proc_root=str(proc))
    assert host.memory_percent() == 25.0
    assert host.boot_time() == datetime.fromtimestamp(1795392003, UTC)
    assert host.uptime_seconds() == 1234.56
    empty = Host(lambda: 0.0, proc_root=str(tmp_path / "none"))
    assert (empty.memory_percent(), empty.boot_time(), empty.uptime_seconds(), empty.cpu_percent()) == (
        None, None, None, None,
    )  # fmt: skip


def test_real_proc_readings() -> None:
    host = Host(lambda: 0.0)
    assert host.boot_time() is not None
    assert host.boot_time() < datetime.now(UTC)
    assert host.uptime_seconds() is not None
    assert 0 <= (host.memory_percent() or 0) <= 100


class FakeNvml:
    class NVMLError(Exception):
        pass

    def __init__(self, utils: list[int], *, init_fails: int = 0) -> None:
        self.utils = utils
        self.init_fails = init_fails
        self.inits = 0
        self.read_fails = False

    def nvmlInit(self) -> None:
        self.inits += 1
        if self.init_fails:
            self.init_fails -= 1
            raise self.NVMLError("Driver Not Loaded")

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return len(self.utils)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        if self.read_fails:
            raise self.NVMLError("GPU is lost")
        return SimpleNamespace(gpu=self.utils[handle], memory=0)


def test_gpu_utilization_is_the_busiest_gpu() -> None:
    nvml = FakeNvml([3, 97])
    assert NvmlGpu(lambda: 0.0, loader=lambda: nvml).utilization() == 97.0


def test_no_driver_is_none_and_retried_later_not_every_poll() -> None:
    t = [0.0]
    nvml = FakeNvml([42], init_fails=1)
    gpu = NvmlGpu(lambda: t[0], retry_seconds=60, loader=lambda: nvml)
    assert gpu.utilization() is None
    t[0] = 30
    assert gpu.utilization() is None
    assert nvml.inits == 1
    t[0] = 61
    assert gpu.utilization() == 42.0
    assert nvml.inits == 2
    nvml.read_fails = True
    assert gpu.utilization() is None
    nvml.read_fails = False
    t[0] = 200
    assert gpu.utilization() == 42.0


def test_no_pynvml_or_no_gpus_is_none() -> None:
    def missing() -> Any:
        raise ImportError("No module named 'pynvml'")

    assert NvmlGpu(lambda: 0.0, loader=missing).utilization() is None
    assert NvmlGpu(lambda: 0.0, loader=lambda: FakeNvml([])).utilization() is None


def test_real_pynvml_without_a_driver_is_none() -> None:
    gpu = NvmlGpu(lambda: 0.0)
    value = gpu.utilization()
    assert value is None or 0 <= value <= 100  # None on a machine without an NVIDIA driver
    gpu.close()
