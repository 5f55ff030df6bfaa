"""The first-boot install phase: the bootstrap's marker file, record v2, and the last-resort stop."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from autostop.records import parse_agent_record
from autostop_agent.config import ConfigError, load_config, read_environment
from autostop_agent.installing import InstallGuard, InstallPhase, read_marker
from autostop_agent.sessions import Sessions
from tests.agent.helpers import INSTANCE, ComfyStandIn, FakeClock, Rig, make_rig
from tests.agent.test_agent_install import _install

STARTED = "2026-11-22T07:58:41Z"


def installing_rig(comfy: ComfyStandIn, clock: FakeClock, marker: Path, **env: str) -> Rig:
    marker.write_text(STARTED + "\n")
    return make_rig(comfy, clock, env={"INSTALL_MARKER": str(marker), **env})


def test_the_marker_says_the_phase_and_when_the_install_began(tmp_path: Path) -> None:
    marker = tmp_path / "installing"
    assert read_marker(str(marker)) == InstallPhase(installing=False)
    marker.write_text(STARTED + "\n")
    assert read_marker(str(marker)) == InstallPhase(True, datetime(2026, 11, 22, 7, 58, 41, tzinfo=UTC))


@pytest.mark.parametrize(
    "content", ["", "soon", "2026-11-22T07:58:41", "2026-11-22 07:58:41+02:00", "9" * 200]
)
def test_a_marker_without_a_utc_time_still_means_installing(tmp_path: Path, content: str) -> None:
    marker = tmp_path / "installing"
    marker.write_text(content)
    assert read_marker(str(marker)) == InstallPhase(installing=True, started_at=None)


def test_an_unreadable_marker_still_means_installing(tmp_path: Path) -> None:
    marker = tmp_path / "installing"
    marker.mkdir()  # opening it fails with an OSError other than "not found"
    assert read_marker(str(marker)) == InstallPhase(installing=True, started_at=None)


def test_install_settings_are_read_and_validated() -> None:
    config = load_config({"AGENT_STATE_PARAMETER": "/p"})
    assert (config.install_marker, config.install_timeout_minutes) == ("/opt/gpu-autostop/installing", 45.0)
    config = load_config({"AGENT_STATE_PARAMETER": "/p", "INSTALL_TIMEOUT_MINUTES": "90"})
    assert config.install_timeout_minutes == 90.0
    for name, value in (("INSTALL_MARKER", "installing"), ("INSTALL_TIMEOUT_MINUTES", "0")):
        with pytest.raises(ConfigError, match=name):
            load_config({"AGENT_STATE_PARAMETER": "/p", name: value})


def test_install_sh_passes_the_install_settings_to_the_agent(tmp_path: Path) -> None:
    result = _install(
        tmp_path,
        AGENT_STATE_PARAMETER="/gpu-autostop/agent-state",
        INSTALL_MARKER="/srv/state/installing",
        INSTALL_TIMEOUT_MINUTES="60",
    )
    assert result.returncode == 0, result.stderr
    config = load_config(read_environment({}, str(tmp_path / "etc/gpu-autostop/agent.env")))
    assert (config.install_marker, config.install_timeout_minutes) == ("/srv/state/installing", 60.0)


def test_while_installing_the_record_says_so_and_serves_nothing(
    comfy: ComfyStandIn, clock: FakeClock, tmp_path: Path
) -> None:
    marker = tmp_path / "installing"
    rig = installing_rig(comfy, clock, marker)
    rig.sessions[0] = Sessions(ssh=1)  # someone watching the install
    comfy.busy()  # even an answering ComfyUI with a queue is not served while the install runs
    rig.run(30)
    record = rig.records()[-1]
    assert record["v"] == 2
    assert record["phase"] == "installing"
    assert record["install_started_at"] == STARTED
    assert record["comfyui_ready"] is False
    assert record["ready_at"] is None
    assert (record["queue_running"], record["queue_pending"], record["sessions"]) == (0, 0, 0)
    assert "ComfyUI install running (bootstrap)" in record["activity"]
    assert record["last_activity_at"] is not None  # the install is activity: idle counts from its end
    # the control plane's parser reads it as a fresh record of this instance, not ready
    parsed = parse_agent_record(rig.sink.stored, INSTANCE)
    assert parsed is not None
    assert not parsed.comfyui_ready
    assert parsed.sessions == 0

    marker.unlink()  # the bootstrap finished
    comfy.idle()
    writes = len(rig.sink.writes)
    rig.run(5)
    after = rig.sink.writes[writes:]
    assert after, "the end of the install is written at once, not at the next heartbeat"
    assert after[0].record["phase"] == "serving"
    assert after[0].record["install_started_at"] is None
    assert after[0].record["comfyui_ready"] is True
    assert after[0].record["sessions"] == 1


def test_serving_records_carry_phase_serving(rig: Rig) -> None:
    rig.run(1)
    record = rig.records()[-1]
    assert (record["v"], record["phase"], record["install_started_at"]) == (2, "serving", None)


def test_no_idle_self_stop_under_an_install_and_the_last_resort_after_timeout_plus_10(
    comfy: ComfyStandIn, clock: FakeClock, tmp_path: Path
) -> None:
    # Without the install this machine (idle GPU, CPU and queue) would self-stop after 2 minutes.
    rig = installing_rig(
        comfy, clock, tmp_path / "installing", IDLE_MINUTES="1", SELF_STOP_MINUTES="2",
        INSTALL_TIMEOUT_MINUTES="10",
    )  # fmt: skip
    start = clock.monotonic()
    rig.run(20 * 60 - 10)
    assert rig.runner.calls == []
    rig.run(20)
    assert len(rig.runner.calls) == 1
    fired_at, command = rig.runner.calls[0]
    assert command == ("shutdown", "-h", "now")
    assert 20 * 60 <= fired_at - start <= 20 * 60 + 5
    rig.run(4 * 60)
    assert len(rig.runner.calls) == 1  # not again within the retry interval
    rig.run(2 * 60)
    assert len(rig.runner.calls) == 2  # the command may have failed: tried again after 5 minutes


def test_a_session_or_a_disabled_self_stop_blocks_the_last_resort(
    comfy: ComfyStandIn, clock: FakeClock, tmp_path: Path
) -> None:
    rig = installing_rig(comfy, clock, tmp_path / "installing", INSTALL_TIMEOUT_MINUTES="10")
    rig.sessions[0] = Sessions(ssm=1)
    rig.run(30 * 60)
    assert rig.runner.calls == []

    off = installing_rig(
        comfy, FakeClock(), tmp_path / "installing", INSTALL_TIMEOUT_MINUTES="10", SELF_STOP_MINUTES="0"
    )
    off.run(30 * 60)
    assert off.runner.calls == []


def test_the_watch_starts_again_when_the_install_ends() -> None:
    guard = InstallGuard(timeout_minutes=10, boot_grace_minutes=5, enabled=True)
    assert not guard.decide(mono=0.0, installing=True, uptime=600.0, sessions=0).stop
    assert not guard.decide(mono=1100.0, installing=False, uptime=1700.0, sessions=0).stop
    assert not guard.decide(mono=1200.0, installing=True, uptime=1800.0, sessions=0).stop  # watched 0 s
    late = guard.decide(mono=2400.0, installing=True, uptime=3000.0, sessions=0)
    assert late.stop
    assert "after 20.0 minutes" in late.reason
    # never within the boot grace, whatever the agent watched
    young = InstallGuard(timeout_minutes=10, boot_grace_minutes=5, enabled=True)
    young.decide(mono=0.0, installing=True, uptime=1.0, sessions=0)
    assert young.decide(mono=1300.0, installing=True, uptime=200.0, sessions=0).reason == "boot grace"
