"""The instance's boot scripts: the user-data renders small and valid, and the every-boot bootstrap
installs ComfyUI and the agent once, then only what changed in S3.

The bootstrap runs here against stub commands (aws, git, pip, systemctl, ...) that log their
arguments, in temporary directories; nothing is installed and nothing leaves the machine.
"""

from __future__ import annotations

import os
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
  "-m venv "*) d="${@: -1}"; mkdir -p "$d/bin"
    printf '#!/bin/bash\\necho "pip $*" >> "$STUB_LOG"\\n' > "$d/bin/pip"; chmod +x "$d/bin/pip"
    touch "$d/bin/python"; chmod +x "$d/bin/python" ;;
esac
""",
    "runuser": 'shift 3; exec "$@"',  # runuser -u comfyui -- CMD...
    "install": 'args=(); skip=0; for a in "$@"; do if [ $skip = 1 ]; then skip=0; continue; fi; '
    'case "$a" in -o|-g) skip=1;; *) args+=("$a");; esac; done; exec /usr/bin/install "${args[@]}"',
    "id": "exit 0",
    "useradd": "exit 0",
    "apt-get": "exit 0",
    "systemctl": 'case "$*" in "is-enabled --quiet gpu-autostop-agent.service") '
    '[ -f "$FAKE_ENABLED" ] ;; esac',
}


def write_stubs(bin_dir: Path) -> None:
    bin_dir.mkdir()
    for name, body in STUBS.items():
        path = bin_dir / name
        path.write_text(f'#!/bin/bash\necho "{name} $*" >> "$STUB_LOG"\n{body}\n')
        path.chmod(path.stat().st_mode | stat.S_IXUSR)


def write_agent(bucket: Path, marker: str) -> None:
    source = bucket.parent / "agent-src" / "agent"
    source.mkdir(parents=True, exist_ok=True)
    install = source / "install.sh"
    install.write_text(
        '#!/bin/bash\necho "install.sh AGENT_STATE_PARAMETER=$AGENT_STATE_PARAMETER '
        f'COMFYUI_URL=$COMFYUI_URL marker={marker}" >> "$STUB_LOG"\ntouch "$FAKE_ENABLED"\n'
    )
    with tarfile.open(bucket / "instance" / "agent.tar.gz", "w:gz") as archive:
        archive.add(source, arcname="agent")


def write_settings(bucket: Path, ref: str = "v0.8.0", port: int = 8188) -> None:
    (bucket / "instance" / "settings.env").write_text(
        f"AGENT_STATE_PARAMETER='/gpu-autostop/agent-state'\nAWS_REGION='us-east-1'\n"
        f"COMFYUI_PORT='{port}'\nCOMFYUI_REF='{ref}'\nCOMFYUI_URL='http://127.0.0.1:{port}'\n"
        "MODELS_S3_URI='s3://my-models/comfyui'\nTORCH_INDEX_URL='https://download.pytorch.org/whl/cu128'\n"
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


def bootstrap(box: dict[str, Path]) -> subprocess.CompletedProcess[str]:
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
    }
    return subprocess.run(["bash", str(BOOTSTRAP)], env=env, capture_output=True, text=True, check=False)


def run_bootstrap(box: dict[str, Path]) -> list[str]:
    """Run the bootstrap successfully; the stub calls it made."""
    result = bootstrap(box)
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
        "pip install --quiet torch torchvision torchaudio --index-url https://download.pytorch.org/whl/cu128"
        in calls
    )
    assert f"aws s3 sync --only-show-errors s3://my-models/comfyui {box['root']}/comfy/models/" in calls
    assert "systemctl restart --no-block comfyui.service" in calls
    agent = "AGENT_STATE_PARAMETER=/gpu-autostop/agent-state COMFYUI_URL=http://127.0.0.1:8188"
    assert f"install.sh {agent} marker=first" in calls
    unit = (box["root"] / "units" / "comfyui.service").read_text()
    assert "--listen 0.0.0.0 --port 8188" in unit
    assert "User=comfyui" in unit
    assert (box["root"] / "state" / "comfyui.ref").read_text().strip() == "v0.8.0"


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
    assert "gpu-autostop-agent.service" not in rendered.split("[Unit]")[1].split("[Service]")[0]
