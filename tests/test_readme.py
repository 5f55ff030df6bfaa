"""The documents' figures come from the project's own code, and what they point to exists.

The README is the front door (short); docs/*.md hold the rest. Wherever a generated table ends up,
it must be the tool's output, said once; every make target a document names exists; every relative
link (and its #anchor) resolves.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from gpu_autostop_tools import calculator as cost
from gpu_autostop_tools import simulate

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_LINES = 250
#: Folders whose READMEs are not this project's documents (caches, builds, copied fixtures).
SKIPPED = {"build", "node_modules", "fixtures", "__pycache__"}
#: The documents these checks cover: the front door, docs/, and the READMEs of the parts.
DOCUMENTS = [
    README,
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted(
        p
        for p in ROOT.glob("*/**/README.md")
        if not any(part.startswith(".") or part in SKIPPED for part in p.relative_to(ROOT).parts)
    ),
]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@cache
def _text(path: Path) -> str:
    return path.read_text()


def _holders(block: str) -> list[str]:
    return [_name(p) for p in DOCUMENTS if block in _text(p)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """The #anchors a Markdown file offers (headings outside code fences; duplicates get -1, -2...)."""
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in _text(path).splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        heading = re.match(r"#{1,6} (.+)", line)
        if fenced or not heading:
            continue
        base = slug(heading.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def test_the_documents_are_found() -> None:
    names = {_name(p) for p in DOCUMENTS}
    assert {"README.md", "docs/design.md", "docs/operations.md", "docs/cost.md"} <= names
    assert {"functions/README.md", "agent/README.md", "terraform/README.md"} <= names


def test_the_readme_is_a_front_door() -> None:
    lines = len(_text(README).splitlines())
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


def test_the_cost_table_is_the_calculators_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert cost.main(["--table", "--region", "us-east-1"]) == 0
    table = capsys.readouterr().out.strip()
    holders = _holders(table)
    stale = f"the cost table must be in README.md once, is in {holders}: paste `make cost-table` output"
    assert holders == ["README.md"], stale


def test_the_simulator_tables_are_make_simulates_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    traces = ("office-hours", "nightly-batch", "hobby")  # the Makefile's TRACES, in its order
    assert simulate.main([a for t in traces for a in ("--trace", f"examples/traces/{t}.csv")]) == 0
    tables = capsys.readouterr().out.strip()
    holders = _holders(tables)
    stale = f"the simulator tables are stale or repeated ({holders}): paste `make simulate` output"
    assert len(holders) == 1, stale


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_every_make_target_a_document_names_exists(document: Path) -> None:
    makefile = _text(ROOT / "Makefile")
    targets = set(re.findall(r"^([a-zA-Z][\w-]*):", makefile, flags=re.M))
    named = set(re.findall(r"`make ([a-z][\w-]*)", _text(document)))
    assert named <= targets, f"{_name(document)} names missing targets: {sorted(named - targets)}"


def test_the_front_door_names_both_quick_start_commands() -> None:
    text = _text(README)
    assert "make demo" in text
    assert "make deploy" in text


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_linked_files_and_anchors_exist(document: Path) -> None:
    broken = []
    for target in LINK.findall(_text(document)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:, file:
            continue
        path_part, _, anchor = target.partition("#")
        linked = (document.parent / path_part).resolve() if path_part else document
        missing_anchor = bool(anchor) and linked.suffix == ".md" and anchor not in anchors(linked)
        if not linked.exists() or missing_anchor:
            broken.append(target)
    assert broken == [], f"{_name(document)}: broken links {broken}"


def test_slug_follows_github() -> None:
    cases = {
        "What did I pay: the weekly report": "what-did-i-pay-the-weekly-report",
        "`make demo`: the whole system on the emulator": "make-demo-the-whole-system-on-the-emulator",
        "The functions' environment": "the-functions-environment",
        "Remote state (off by default)": "remote-state-off-by-default",
        "Which idle time: `--recommend`": "which-idle-time---recommend",
    }
    assert {heading: slug(heading) for heading in cases} == cases
