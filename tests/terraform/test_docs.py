"""The Terraform documentation keeps up with the code: every setting in the example, every module
input and output in its README, every root output in terraform/README.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"
MODULES = sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())


def names(path: Path, kind: str) -> list[str]:
    return re.findall(rf'^{kind} "([a-z0-9_]+)" {{', path.read_text(), re.MULTILINE)


def test_every_root_variable_is_in_the_example() -> None:
    example = (TERRAFORM / "terraform.tfvars.example").read_text()
    missing = [
        v
        for v in names(TERRAFORM / "variables.tf", "variable")
        if not re.search(rf"^#? ?{v} +=", example, re.M)
    ]
    assert missing == []


def test_example_sets_only_known_variables() -> None:
    known = set(names(TERRAFORM / "variables.tf", "variable"))
    example = (TERRAFORM / "terraform.tfvars.example").read_text()
    used = set(re.findall(r"^#? ?([a-z0-9_]+) +=", example, re.M))
    assert used - known == set()


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_module_readme_lists_inputs_and_outputs(module: Path) -> None:
    readme = (module / "README.md").read_text()
    expected = names(module / "variables.tf", "variable") + names(module / "outputs.tf", "output")
    missing = [n for n in expected if f"| `{n}` |" not in readme]
    assert missing == []


def test_root_readme_names_every_output() -> None:
    readme = (TERRAFORM / "README.md").read_text()
    missing = [n for n in names(TERRAFORM / "outputs.tf", "output") if f"`{n}`" not in readme]
    assert missing == []
