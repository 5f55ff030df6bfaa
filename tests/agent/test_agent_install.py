"""install.sh (under a scratch root, no pip, no systemctl) and the systemd unit's safety properties."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from autostop_agent.config import load_config, read_environment

AGENT = Path(__file__).resolve().parents[2] / "agent"
UNIT = AGENT / "gpu-autostop-agent.service"


def _install(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", ""), "INSTALL_ROOT": str(root), "SKIP_PIP": "1"}
    return subprocess.run(
        ["bash", str(AGENT / "install.sh")],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_install_writes_env_file_and_unit_idempotently(tmp_path: Path) -> None:
    settings = {
        "AGENT_STATE_PARAMETER": "/gpu-autostop/agent-state",
        "METRICS_NAMESPACE": "GpuAutostop",
        "IDLE_MINUTES": "12.5",
        "SHUTDOWN_COMMAND": "shutdown -h now",
        "ACTIVITY_PROCESS_REGEX": r"train\.py|accelerate launch",
        "UNRELATED": "not written",
    }
    first = _install(tmp_path, **settings)
    assert first.returncode == 0, first.stderr
    env_file = tmp_path / "etc/gpu-autostop/agent.env"
    unit = tmp_path / "etc/systemd/system/gpu-autostop-agent.service"
    text = env_file.read_text()
    assert "UNRELATED" not in text
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    # the agent reads back exactly what was given
    config = load_config(read_environment({}, str(env_file)))
    assert config.idle_minutes == 12.5
    assert config.self_stop_minutes == 22.5
    assert config.shutdown_command == ("shutdown", "-h", "now")
    assert config.activity_process_regex is not None
    assert config.activity_process_regex.search("python train.py")
    assert unit.read_text() == UNIT.read_text()

    second = _install(tmp_path, **settings)
    assert second.returncode == 0
    assert "unchanged" in second.stderr
    assert env_file.read_text() == text

    # without AGENT_STATE_PARAMETER a re-run keeps the existing configuration (a code update)
    third = _install(tmp_path)
    assert third.returncode == 0
    assert env_file.read_text() == text


def test_install_refuses_without_parameter_or_with_multiline_values(tmp_path: Path) -> None:
    missing = _install(tmp_path)
    assert missing.returncode == 2
    assert "AGENT_STATE_PARAMETER is required" in missing.stderr
    bad = _install(tmp_path, AGENT_STATE_PARAMETER="/p", SHUTDOWN_COMMAND="shutdown\nrm -rf /")
    assert bad.returncode == 2
    assert "SHUTDOWN_COMMAND must be a single line" in bad.stderr
    assert not (tmp_path / "etc/gpu-autostop/agent.env").exists()


def test_install_points_the_unit_at_the_prefix(tmp_path: Path) -> None:
    result = _install(tmp_path, AGENT_STATE_PARAMETER="/p", AGENT_PREFIX="/srv/autostop")
    assert result.returncode == 0, result.stderr
    unit = (tmp_path / "etc/systemd/system/gpu-autostop-agent.service").read_text()
    assert "ExecStart=/srv/autostop/agent-venv/bin/python -m autostop_agent" in unit


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def test_unit_restarts_always_and_does_not_block_the_shutdown() -> None:
    service = _unit()["Service"]
    assert service["Restart"] == "always"
    assert service["RestartPreventExitStatus"] == "78"  # a bad configuration is not a crash loop
    assert _unit()["Unit"]["StartLimitIntervalSec"] == "0"
    assert service["ExecStart"] == "/opt/gpu-autostop/agent-venv/bin/python -m autostop_agent"
    assert (
        service["RuntimeDirectory"] == "gpu-autostop"
    )  # holds the default lock file /run/gpu-autostop/agent.lock
    # what would break `shutdown -h now` or NVML must not be there
    assert service.get("ProtectSystem") != "strict"
    assert "User" not in service  # systemctl poweroff needs root
    assert "PrivateDevices" not in service
    assert "ProtectProc" not in service
    assert "InaccessiblePaths" not in service
    assert "ReadOnlyPaths" not in service
    assert "CAP_SYS_BOOT" in service["CapabilityBoundingSet"].split()
    assert service["NoNewPrivileges"] == "yes"
    assert _unit()["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    python = shutil.which("python3") or "/usr/bin/python3"
    unit = tmp_path / "gpu-autostop-agent.service"
    unit.write_text(UNIT.read_text().replace("/opt/gpu-autostop/agent-venv/bin/python", python))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Unknown" not in result.stderr
