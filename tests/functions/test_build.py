"""The Lambda package: deterministic, complete, small, nothing compiled for this machine."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from scripts import build_zip

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("zips")
    deps = ROOT / "build" / "deps"  # shared with `make build`; reused when requirements are unchanged
    first, second = out / "a.zip", out / "b.zip"
    assert build_zip.main(["--output", str(first), "--deps-dir", str(deps)]) == 0
    assert build_zip.main(["--output", str(second), "--deps-dir", str(deps)]) == 0
    return first, second


def test_two_builds_of_the_same_tree_are_byte_identical(two_builds: tuple[Path, Path]) -> None:
    first, second = two_builds
    assert first.read_bytes() == second.read_bytes()


def test_entries_are_sorted_with_fixed_time_and_mode(two_builds: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(two_builds[0]) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {(i.external_attr >> 16) & 0o777 for i in infos} == {0o644}


def test_package_holds_handlers_and_powertools_but_not_boto3(two_builds: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(two_builds[0]) as archive:
        names = set(archive.namelist())
    for handler in ("start", "status", "stop"):
        assert f"autostop/handlers/{handler}.py" in names
    assert "aws_lambda_powertools/logging/logger.py" in names
    assert not any(n.startswith(("boto3/", "botocore/")) for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any(n.endswith(".so") for n in names), "nothing compiled for the build machine"


def test_package_is_under_five_megabytes(two_builds: tuple[Path, Path]) -> None:
    assert two_builds[0].stat().st_size < 5 * 1024 * 1024
