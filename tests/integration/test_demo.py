"""`make demo` end to end: moto server, the real Terraform apply, handlers, agent, destroy.

Slow (about a minute and a half) and needs terraform with the aws provider (the Makefile's
CLI config points at the local mirror when present); skipped when terraform is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPLY_TEST = ROOT / "terraform" / "tests" / "apply" / "moto.tftest.hcl"
DEMO_TEST = ROOT / "terraform" / "tests" / "demo" / "demo.tftest.hcl"


def overrides(path: Path) -> str:
    text = path.read_text()
    return text[text.index("override_resource") :].strip()


def test_the_demo_uses_the_same_overrides_as_the_emulator_apply_test() -> None:
    assert overrides(DEMO_TEST) == overrides(APPLY_TEST)


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_make_demo_runs_the_whole_cycle(tmp_path: Path) -> None:
    events_file = tmp_path / "events.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("COMFYUI_URL", None)
    done = subprocess.run(
        ["make", "--no-print-directory", "demo", f"DEMO_ARGS=--plain --events-file {events_file}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    timeline = json.loads(events_file.read_text())
    steps = [(e["event"], e["decision"]) for e in timeline["events"]]
    expected = [
        ("terraform apply", "applied"),
        ("request 1: start λ", "started"),
        ("status λ", "ready"),
        ("POST /prompt", "queued"),
        ("idle alarm → stop λ", "declined"),  # under a running job
        ("GET /history, /view", "done"),
        ("schedule re-check → stop λ", "declined"),  # idle, but not long enough
        ("idle alarm → stop λ", "STOPPED"),
        ("schedule re-check → stop λ", "nothing to do"),
        ("request 2: start λ", "started"),
        ("status λ", "ready"),
        ("emergency stop → stop λ", "STOPPED"),
        ("end", "stopped"),
        ("terraform destroy", "destroyed"),
    ]
    cursor = 0
    for step in expected:
        assert step in steps[cursor:], f"{step} missing after {steps[:cursor]}"
        cursor = steps.index(step, cursor) + 1
    declined = next(e for e in timeline["events"] if e["decision"] == "declined")
    assert "queue busy" in declined["reason"]
    assert timeline["result"]["final_state"] == "stopped"
    assert "demo finished in" in done.stdout
    assert re.search(r"GPU time billed: [0-9.]+ minutes", done.stdout)
    # every process the demo started (moto server, terraform, agents) is gone
    assert len(timeline["pids"]) >= 4
    for pid in timeline["pids"]:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
