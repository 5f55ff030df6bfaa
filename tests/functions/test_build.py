"""The Lambda package: deterministic, complete, small, nothing compiled for this machine."""

from __future__ import annotations

import ast
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


def _autostop_imports(source: str) -> set[str]:
    """The autostop modules a file imports, at the top or inside a function (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "autostop":
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "autostop")
    return found


def test_package_holds_the_lambda_runtime_and_nothing_else(two_builds: tuple[Path, Path]) -> None:
    """No operator command, offline tool or command-line entry point ships to Lambda: every module in
    the zip's autostop/ is reachable from the five handlers, and none of them is a program."""
    with zipfile.ZipFile(two_builds[0]) as archive:
        sources = {
            n.removesuffix(".py").replace("/", ".").removesuffix(".__init__"): archive.read(n).decode()
            for n in archive.namelist()
            if n.startswith("autostop/") and n.endswith(".py")
        }
        names = archive.namelist()
    other_packages = ("gpu_autostop_cli/", "gpu_autostop_tools/", "autostop_agent/")
    assert not any(n.startswith(other_packages) for n in names)
    assert not [n for n in names if n.startswith("autostop/") and not n.endswith(".py")], "data files"
    handlers = {f"autostop.handlers.{h}" for h in ("start", "status", "stop", "cost_report", "budget")}
    reached, todo = set(), list(handlers)
    while todo:
        module = todo.pop()
        if module in reached or module not in sources:
            continue
        reached.add(module)
        todo.extend(_autostop_imports(sources[module]))
    unreached = set(sources) - reached - {"autostop", "autostop.handlers"}
    assert not unreached, f"no handler imports (cli/ or tools/ material?): {sorted(unreached)}"
    for module, source in sources.items():
        assert "__main__" not in source, f"{module} is a program"
        assert "import argparse" not in source, f"{module} parses a command line"


def test_package_holds_the_contract_as_the_repository_has_it(two_builds: tuple[Path, Path]) -> None:
    """The contract the agent shares is copied in at the zip's top level (Lambda imports it from
    /var/task), byte for byte, and the runtime imports no folder of the agent's."""
    contract = Path(__file__).resolve().parents[2] / "contract" / "autostop_contract.py"
    with zipfile.ZipFile(two_builds[0]) as archive:
        assert archive.read("autostop_contract.py") == contract.read_bytes()
        runtime = [archive.read(n).decode() for n in archive.namelist() if n.startswith("autostop/")]
    assert not any("autostop_agent" in source for source in runtime)
