"""The instance's boot scripts: the user-data renders small and valid, and the every-boot bootstrap
installs the agent, then ComfyUI with pinned PyTorch, once, resumes an install that a failure or a
reboot interrupted, and later applies only what changed in S3.

The bootstrap runs here against stub commands (aws, git, pip, systemctl, ...) that log their
arguments, in temporary directories; nothing is installed and nothing leaves the machine.
FAKE_FAIL makes the stub pip fail when its arguments contain that text (a step failing half way);
FAKE_APT_LOCKED makes that many ``apt-get update`` calls fail as if another apt held the lock.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"
BOOTSTRAP = TERRAFORM / "modules" / "instance" / "files" / "bootstrap.sh"
USER_DATA = TERRAFORM / "modules" / "instance" / "templates" / "user_data.sh.tftpl"
BUCKET = "gpu-autostop-boot-test"

STUBS = {
    # aws s3 cp s3://BUCKET/KEY DEST copies from the fake bucket directory; sync is only logged.
    "aws": """
if [ "$1 $2" = "s3 cp" ]; then
  for a in "$@"; do case "$a" in s3://*) src="$a";; esac; done
  key="${src#s3://*/}"; dest="${@: -1}"
  cp "$FAKE_BUCKET/$key" "$dest"
fi
""",
    "git": """
case "$*" in
  *" clone "*) mkdir -p "${@: -1}/.git"; touch "${@: -1}/requirements.txt" ;;
esac
""",
    "python3": """
case "$*" in
  "-m venv "*) d="${@: -1}"; mkdir -p "$d/bin"; cp "$FAKE_PIP" "$d/bin/pip"
    touch "$d/bin/python"; chmod +x "$d/bin/python" ;;
  "-c "*) [ -z "${FAKE_NO_VENV:-}" ] ;;
esac
""",
    "runuser": 'shift 3; exec "$@"',  # runuser -u comfyui -- CMD...
    "install": 'args=(); skip=0; for a in "$@"; do if [ $skip = 1 ]; then skip=0; continue; fi; '
    'case "$a" in -o|-g) skip=1;; *) args+=("$a");; esac; done; exec /usr/bin/install "${args[@]}"',
    "id": "exit 0",
    "useradd": "exit 0",
    "apt-get": 'case "$*" in *" update "*) n=$(cat "$FAKE_APT_LOCKED" 2>/dev/null || echo 0); '
    'if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$FAKE_APT_LOCKED"; exit 100; fi ;; esac',
    "systemctl": 'case "$*" in "is-enabled --quiet gpu-autostop-agent.service") '
    '[ -f "$FAKE_ENABLED" ] ;; esac',
}


# The virtualenv's pip: logs its arguments and whether the install marker exists (with its content).
PIP = """#!/bin/bash
echo "pip $*" >> "$STUB_LOG"
[ -f "$FAKE_MARKER" ] && echo "pip saw marker $(cat "$FAKE_MARKER")" >> "$STUB_LOG"
if [ -n "${FAKE_FAIL:-}" ] && [[ "$*" == *"$FAKE_FAIL"* ]]; then exit 1; fi
exit 0
"""


def write_stubs(bin_dir: Path) -> None:
    bin_dir.mkdir()
    for name, body in STUBS.items():
        path = bin_dir / name
        path.write_text(f'#!/bin/bash\necho "{name} $*" >> "$STUB_LOG"\n{body}\n')
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    (bin_dir / "venv-pip").write_text(PIP)
    (bin_dir / "venv-pip").chmod(0o755)


def write_agent(bucket: Path, marker: str) -> None:
    source = bucket.parent / "agent-src" / "agent"
    source.mkdir(parents=True, exist_ok=True)
    install = source / "install.sh"
    install.write_text(
        '#!/bin/bash\necho "install.sh AGENT_STATE_PARAMETER=$AGENT_STATE_PARAMETER '
        f'COMFYUI_URL=$COMFYUI_URL marker={marker}" >> "$STUB_LOG"\ntouch "$FAKE_ENABLED"\n'
        'echo "install.sh INSTALL_MARKER=$INSTALL_MARKER INSTALL_TIMEOUT_MINUTES=$INSTALL_TIMEOUT_MINUTES" '
        '>> "$STUB_LOG"\n[ -f "$INSTALL_MARKER" ] && echo "install.sh saw marker" >> "$STUB_LOG"\nexit 0\n'
    )
    with tarfile.open(bucket / "instance" / "agent.tar.gz", "w:gz") as archive:
        archive.add(source, arcname="agent")


def write_settings(bucket: Path, ref: str = "v0.8.0", port: int = 8188, torch: str = "2.8.0") -> None:
    (bucket / "instance" / "settings.env").write_text(
        f"AGENT_STATE_PARAMETER='/gpu-autostop/agent-state'\nAWS_REGION='us-east-1'\n"
        f"COMFYUI_PORT='{port}'\nCOMFYUI_REF='{ref}'\nCOMFYUI_URL='http://127.0.0.1:{port}'\n"
        "INSTALL_TIMEOUT_MINUTES='45'\n"
        "MODELS_S3_URI='s3://my-models/comfyui'\nTORCH_INDEX_URL='https://download.pytorch.org/whl/cu128'\n"
        f"TORCHAUDIO_VERSION='{torch}'\nTORCHVISION_VERSION='0.23.0'\nTORCH_VERSION='{torch}'\n"
    )


@pytest.fixture
def box(tmp_path: Path) -> dict[str, Path]:
    bucket = tmp_path / "bucket"
    (bucket / "instance").mkdir(parents=True)
    shutil.copy(BOOTSTRAP, bucket / "instance" / "bootstrap.sh")
    write_settings(bucket)
    write_agent(bucket, "first")
    write_stubs(tmp_path / "bin")
    return {"root": tmp_path, "bucket": bucket, "log": tmp_path / "calls.log"}


def bootstrap(box: dict[str, Path], **fakes: str) -> subprocess.CompletedProcess[str]:
    """Run the bootstrap once, as gpu-autostop-bootstrap.service would, against the stubs."""
    root = box["root"]
    box["log"].write_text("")
    for d in ("state", "comfy", "units"):
        (root / d).mkdir(exist_ok=True)
    env = {
        "PATH": f"{root / 'bin'}:{os.environ['PATH']}",
        "STUB_LOG": str(box["log"]),
        "FAKE_BUCKET": str(box["bucket"]),
        "FAKE_ENABLED": str(root / "agent-enabled"),
        "BOOTSTRAP_URI": f"s3://{BUCKET}/instance/bootstrap.sh",
        "GPU_AUTOSTOP_STATE_DIR": str(root / "state"),
        "GPU_AUTOSTOP_COMFY_DIR": str(root / "comfy"),
        "GPU_AUTOSTOP_UNIT_DIR": str(root / "units"),
        "GPU_AUTOSTOP_RETRY_SECONDS": "0",
        "FAKE_PIP": str(root / "bin" / "venv-pip"),
        "FAKE_MARKER": str(root / "state" / "installing"),
        "FAKE_APT_LOCKED": str(root / "apt-locked"),
        **fakes,
    }
    return subprocess.run(["bash", str(BOOTSTRAP)], env=env, capture_output=True, text=True, check=False)


def run_bootstrap(box: dict[str, Path], **fakes: str) -> list[str]:
    """Run the bootstrap successfully; the stub calls it made."""
    result = bootstrap(box, **fakes)
    assert result.returncode == 0, result.stderr
    return box["log"].read_text().splitlines()


def test_first_boot_installs_everything(box: dict[str, Path]) -> None:
    calls = run_bootstrap(box)

    state = box["root"] / "state"
    assert (
        f"aws s3 cp --only-show-errors s3://{BUCKET}/instance/settings.env {state}/settings.env.new" in calls
    )
    assert any(c.startswith("git clone --quiet https://github.com/comfyanonymous/ComfyUI.git") for c in calls)
    assert f"git -C {box['root']}/comfy checkout --quiet --force v0.8.0" in calls
    assert (
        "pip install --quiet torch==2.8.0 torchvision==0.23.0 torchaudio==2.8.0 "
        "--index-url https://download.pytorch.org/whl/cu128" in calls
    )
    constraints = state / "torch-constraints.txt"
    assert f"pip install --quiet -r {box['root']}/comfy/requirements.txt -c {constraints}" in calls
    assert constraints.read_text().split() == ["torch==2.8.0", "torchvision==0.23.0", "torchaudio==2.8.0"]
    assert f"aws s3 sync --only-show-errors s3://my-models/comfyui {box['root']}/comfy/models/" in calls
    assert "systemctl restart --no-block comfyui.service" in calls
    agent = "AGENT_STATE_PARAMETER=/gpu-autostop/agent-state COMFYUI_URL=http://127.0.0.1:8188"
    assert f"install.sh {agent} marker=first" in calls
    unit = (box["root"] / "units" / "comfyui.service").read_text()
    assert "--listen 0.0.0.0 --port 8188" in unit
    assert "User=comfyui" in unit
    assert (state / "steps" / "checkout").read_text().strip() == "v0.8.0"


def test_later_boot_changes_nothing_that_did_not_change(box: dict[str, Path]) -> None:
    run_bootstrap(box)
    calls = run_bootstrap(box)

    assert not any(c.startswith(("git ", "pip ", "install.sh")) for c in calls)
    assert "systemctl restart --no-block comfyui.service" in calls  # starts it, as every boot


def test_changed_settings_or_agent_are_applied(box: dict[str, Path]) -> None:
    run_bootstrap(box)
    write_settings(box["bucket"], ref="v0.9.0", port=8190)
    write_agent(box["bucket"], "second")
    calls = run_bootstrap(box)

    assert f"git -C {box['root']}/comfy checkout --quiet --force v0.9.0" in calls
    assert any(c.startswith("install.sh") and c.endswith("marker=second") for c in calls)
    assert "--port 8190" in (box["root"] / "units" / "comfyui.service").read_text()


def test_a_failed_download_stops_before_changing_anything(box: dict[str, Path]) -> None:
    (box["bucket"] / "instance" / "agent.tar.gz").unlink()

    assert bootstrap(box).returncode != 0
    assert not (box["root"] / "units" / "comfyui.service").exists()


def index(calls: list[str], prefix: str) -> int:
    return next(n for n, c in enumerate(calls) if c.startswith(prefix))


def test_the_agent_is_installed_before_comfyui_and_sees_the_install_marker(box: dict[str, Path]) -> None:
    calls = run_bootstrap(box)

    marker = box["root"] / "state" / "installing"
    assert index(calls, "install.sh AGENT_STATE_PARAMETER") < index(calls, "git clone")
    assert index(calls, "install.sh AGENT_STATE_PARAMETER") < index(calls, "pip install --quiet torch==")
    assert f"install.sh INSTALL_MARKER={marker} INSTALL_TIMEOUT_MINUTES=45" in calls
    assert "install.sh saw marker" in calls  # its first record already says "installing"
    started = next(c for c in calls if c.startswith("pip saw marker")).split()[-1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", started)  # the record's time format
    assert not marker.exists()  # removed once the install succeeded


def test_later_boots_write_no_marker(box: dict[str, Path]) -> None:
    run_bootstrap(box)
    calls = run_bootstrap(box)
    assert not any(c.startswith("pip saw marker") for c in calls)
    assert not (box["root"] / "state" / "installing").exists()


def test_a_failure_half_way_resumes_at_the_failed_step_and_keeps_the_start_time(box: dict[str, Path]) -> None:
    state = box["root"] / "state"
    failed = bootstrap(box, FAKE_FAIL="requirements.txt")
    assert failed.returncode != 0
    marker = state / "installing"
    assert marker.exists()  # the install has not finished: the agent keeps reporting it
    assert not (box["root"] / "units" / "comfyui.service").exists()
    marker.write_text("2026-11-22T07:00:00Z\n")  # as if that boot had been an hour ago

    calls = run_bootstrap(box)  # the next boot

    assert not any(
        c.startswith(("git clone", "python3 -m venv", "pip install --quiet torch==")) for c in calls
    )
    assert not any(c.startswith("git -C") for c in calls)  # the checkout was done too
    assert any(c.startswith("pip install --quiet -r") for c in calls)
    assert "pip saw marker 2026-11-22T07:00:00Z" in calls  # the original start, not the reboot's
    assert not marker.exists()
    assert (box["root"] / "units" / "comfyui.service").exists()


def test_an_interrupted_clone_is_cloned_afresh(box: dict[str, Path]) -> None:
    comfy = box["root"] / "comfy"
    (comfy / ".git").mkdir(parents=True)  # a clone a reboot cut short: no step marker
    (comfy / "half-written").write_text("x")

    calls = run_bootstrap(box)

    assert any(c.startswith("git clone --quiet https://github.com/comfyanonymous/ComfyUI.git") for c in calls)
    assert not (comfy / "half-written").exists()


def test_an_interrupted_venv_is_made_again(box: dict[str, Path]) -> None:
    assert bootstrap(box, FAKE_FAIL="--upgrade pip").returncode != 0
    venv = box["root"] / "comfy" / ".venv"
    (venv / "leftover").write_text("x")

    calls = run_bootstrap(box)

    assert any(c.startswith("python3 -m venv") for c in calls)
    assert not (venv / "leftover").exists()
    assert not any(c.startswith("git clone") for c in calls)


def test_changed_torch_pins_reinstall_torch_only(box: dict[str, Path]) -> None:
    run_bootstrap(box)
    write_settings(box["bucket"], torch="2.8.1")
    calls = run_bootstrap(box)

    assert any(
        c.startswith("pip install --quiet torch==2.8.1 torchvision==0.23.0 torchaudio==2.8.1") for c in calls
    )
    assert any(c.startswith("pip install --quiet -r") for c in calls)
    assert not any(c.startswith(("git clone", "python3 -m venv", "git -C")) for c in calls)
    assert any(c.startswith("pip saw marker") for c in calls)  # a reinstall is an install phase too


def test_apt_waits_for_the_lock_and_retries_update(box: dict[str, Path]) -> None:
    (box["root"] / "apt-locked").write_text("2")  # unattended-upgrades holds the lists lock twice
    calls = run_bootstrap(box, FAKE_NO_VENV="1")

    apt = [c for c in calls if c.startswith("apt-get")]
    assert apt == [
        "apt-get -o DPkg::Lock::Timeout=600 update -q",
        "apt-get -o DPkg::Lock::Timeout=600 update -q",
        "apt-get -o DPkg::Lock::Timeout=600 update -q",
        "apt-get -o DPkg::Lock::Timeout=600 install -y -q python3-venv",
    ]


def test_user_data_renders_small_and_valid(tmp_path: Path) -> None:
    template = USER_DATA.read_text()
    rendered = template.replace("${region}", "us-east-1").replace(
        "${bootstrap_uri}", f"s3://{BUCKET}-20260101000000000000000001/instance/bootstrap.sh"
    )
    assert "${" not in rendered
    assert len(rendered.encode()) < 16 * 1024
    script = tmp_path / "user_data.sh"
    script.write_text(rendered)
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert "Before=comfyui.service" in rendered
    assert "TimeoutStartSec=infinity" in rendered  # an install is limited by install_timeout_minutes
    assert "gpu-autostop-agent.service" not in rendered.split("[Unit]")[1].split("[Service]")[0]
