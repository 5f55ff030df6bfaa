"""The README's figures come from the project's own code, and its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpu_autostop_tools import calculator as cost
from gpu_autostop_tools import simulate

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_the_cost_table_is_the_calculators_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert cost.main(["--table", "--region", "us-east-1"]) == 0
    table = capsys.readouterr().out.strip()
    assert table in README, "README.md's cost table is stale: paste `make cost-table` output"


def test_the_simulator_tables_are_make_simulates_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    traces = ("office-hours", "nightly-batch", "hobby")  # the Makefile's TRACES, in its order
    assert simulate.main([a for t in traces for a in ("--trace", f"examples/traces/{t}.csv")]) == 0
    tables = capsys.readouterr().out.strip()
    assert tables in README, "README.md's simulator tables are stale: paste `make simulate` output"


def test_every_make_target_the_readme_names_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-zA-Z][\w-]*):", makefile, flags=re.M))
    named = set(re.findall(r"`make ([a-z][\w-]*)", README))
    assert named, "the README names make targets"
    assert named <= targets, f"README names missing targets: {sorted(named - targets)}"


def test_linked_files_exist() -> None:
    for link in re.findall(r"\]\(((?:functions|agent|terraform|examples)/[^)#]+)", README):
        assert (ROOT / link).exists(), link
