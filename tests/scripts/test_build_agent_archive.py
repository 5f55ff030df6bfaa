"""build/agent.tar.gz: deterministic, agent/ and contract/ at its top, no caches, scripts executable."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from scripts import build_agent_archive


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "some-checkout"
    (src / "autostop_agent" / "__pycache__").mkdir(parents=True)
    (src / "install.sh").write_text("#!/bin/bash\n")
    (src / "autostop_agent" / "__init__.py").write_text("")
    (src / "autostop_agent" / "__pycache__" / "x.cpython-312.pyc").write_bytes(b"\0")
    (src / "gpu-autostop-agent.service").write_text("[Unit]\n")
    return src


def test_layout_modes_and_owner(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "agent.tar.gz"
    assert build_agent_archive.main(["--source", str(source), "--output", str(out)]) == 0

    with tarfile.open(out) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert sorted(members) == [
        "agent/autostop_agent/__init__.py",
        "agent/gpu-autostop-agent.service",
        "agent/install.sh",
        "contract/autostop_contract.py",
        "contract/pyproject.toml",
    ]
    with tarfile.open(out) as archive:
        shipped = archive.extractfile("contract/autostop_contract.py")
        assert shipped is not None
        assert shipped.read() == (build_agent_archive.CONTRACT / "autostop_contract.py").read_bytes()
    assert members["agent/install.sh"].mode == 0o755
    assert members["agent/gpu-autostop-agent.service"].mode == 0o644
    assert {(m.uid, m.gid, m.mtime) for m in members.values()} == {(0, 0, build_agent_archive.FIXED_MTIME)}


def test_same_tree_same_bytes(source: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    build_agent_archive.main(["--source", str(source), "--output", str(first)])
    (source / "install.sh").touch()  # a newer mtime changes nothing
    build_agent_archive.main(["--source", str(source), "--output", str(second)])

    assert first.read_bytes() == second.read_bytes()


def test_missing_agent_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        build_agent_archive.main(["--source", str(tmp_path / "agent"), "--output", str(tmp_path / "x")]) == 1
    )
    assert "install.sh not found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
