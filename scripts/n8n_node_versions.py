"""Regenerate tests/examples/n8n_node_versions.json from the released n8n-nodes-base package.

The snapshot says which node types and typeVersions exist in a released n8n, so the
workflow tests can check examples/n8n/*.json without npm or network:

- ``nodes``: every node type in the package -> its versions and default version, read from
  ``dist/types/nodes.json`` (the node descriptions n8n generates from the loaded node classes;
  the editor's node list is built from the same data) and cross-checked against the versions
  declared in the compiled sources ``dist/nodes/**/*.node.js`` (``version: [...]`` of a plain
  node, the ``nodeVersions = {...}`` keys of a versioned one). A disagreement is an error.
- ``parameters``: for each (type, version) the example workflows use, the parameter names that
  version accepts (with the allowed values of option lists and the names inside collections),
  so a typo in a parameter name fails a test instead of being silently dropped by n8n.
- ``credentials``: the credential types each used node accepts.

Usage:
    python scripts/n8n_node_versions.py                      # npm pack the pinned version
    python scripts/n8n_node_versions.py --version 2.41.2     # another release
    python scripts/n8n_node_versions.py --tarball FILE.tgz   # an already downloaded tarball
    python scripts/n8n_node_versions.py --check              # exit 1 if the snapshot is out of date

The tarball comes from the npm registry through the ordinary client (``npm pack``), which
verifies its integrity; the version should match the n8n release you run (n8n 2.41.1 depends
on n8n-nodes-base 2.41.1).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VERSION = "2.41.1"
DEFAULT_OUTPUT = ROOT / "tests" / "examples" / "n8n_node_versions.json"
EXAMPLES = ROOT / "examples" / "n8n"
PACKAGE = "n8n-nodes-base"
PREFIX = "n8n-nodes-base."

Number = int | float


def _num(value: Any) -> Number:
    number = float(value)
    return int(number) if number.is_integer() else number


def _versions(value: Any) -> list[Number]:
    values = value if isinstance(value, list) else [value]
    return sorted({_num(v) for v in values})


# --- reading the package ------------------------------------------------------------------------


class Package:
    """The files of an n8n-nodes-base tarball that this script needs."""

    def __init__(self, tarball: Path) -> None:
        self.tarball = tarball
        with tarfile.open(tarball, "r:gz") as archive:
            self._files: dict[str, bytes] = {}
            for member in archive.getmembers():
                name = member.name.removeprefix("package/")
                wanted = name in ("package.json", "dist/types/nodes.json", "dist/known/nodes.json") or (
                    name.startswith("dist/nodes/") and name.endswith((".node.js", ".node.ee.js"))
                )
                if wanted and member.isfile():
                    handle = archive.extractfile(member)
                    if handle is not None:
                        self._files[name] = handle.read()

    def json(self, name: str) -> Any:
        return json.loads(self._files[name])

    def text(self, name: str) -> str | None:
        data = self._files.get(name)
        return data.decode("utf-8") if data is not None else None


def npm_pack(version: str, dest: Path) -> tuple[Path, dict[str, str]]:
    """Download the tarball with npm; return its path and the registry's dist metadata."""
    spec = f"{PACKAGE}@{version}"
    out = subprocess.run(
        ["npm", "pack", spec, "--json", "--pack-destination", str(dest)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info = json.loads(out[out.index("[") :])[0]
    view = subprocess.run(
        ["npm", "view", spec, "dist.tarball", "dist.integrity", "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    dist = json.loads(view[view.index("{") :])
    meta = {"tarball": dist["dist.tarball"], "integrity": dist["dist.integrity"]}
    if info.get("integrity") != meta["integrity"]:
        raise SystemExit(f"integrity mismatch for {spec}: {info.get('integrity')} != {meta['integrity']}")
    return dest / info["filename"], meta


# --- versions -----------------------------------------------------------------------------------


def described_versions(descriptions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """type -> {versions, default} from dist/types/nodes.json."""
    nodes: dict[str, dict[str, Any]] = {}
    for entry in descriptions:
        node = nodes.setdefault(PREFIX + entry["name"], {"versions": set(), "default": None})
        node["versions"].update(_versions(entry["version"]))
        if entry.get("defaultVersion") is not None:
            node["default"] = _num(entry["defaultVersion"])
    result = {}
    for name, node in sorted(nodes.items()):
        versions = sorted(node["versions"])
        result[name] = {"versions": versions, "default": node["default"] or max(versions)}
    return result


_NODE_VERSIONS_BLOCK = re.compile(r"nodeVersions\s*=\s*\{(.*?)\};", re.S)
_NODE_VERSIONS_KEY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*:", re.M)
_DESCRIPTION_VERSION = re.compile(r"^\s*version:\s*(\[[0-9.,\s]*\]|[0-9]+(?:\.[0-9]+)?)\s*,", re.M)


def source_versions(source: str) -> list[Number] | None:
    """The versions a compiled ``*.node.js`` declares, or None when it does not say (imported)."""
    block = _NODE_VERSIONS_BLOCK.search(source)
    if block:
        return sorted({_num(k) for k in _NODE_VERSIONS_KEY.findall(block.group(1))})
    found: set[Number] = set()
    for match in _DESCRIPTION_VERSION.findall(source):
        found.update(_versions(json.loads(match)))
    return sorted(found) or None


def cross_check(package: Package, nodes: dict[str, dict[str, Any]]) -> tuple[int, list[str]]:
    """Compare described versions with the compiled sources. Returns (checked, problems)."""
    known: dict[str, dict[str, str]] = package.json("dist/known/nodes.json")
    problems: list[str] = []
    checked = 0
    for short, entry in sorted(known.items()):
        name = PREFIX + short
        if name not in nodes:
            problems.append(f"{name}: registered in dist/known/nodes.json but not described")
            continue
        source = package.text(entry["sourcePath"])
        if source is None:
            problems.append(f"{name}: {entry['sourcePath']} missing from the tarball")
            continue
        declared = source_versions(source)
        if declared is None:
            continue  # description imported from another module; dist/types is the only source
        checked += 1
        if declared != nodes[name]["versions"]:
            problems.append(f"{name}: source declares {declared}, description says {nodes[name]['versions']}")
    for name in nodes:
        if name.removeprefix(PREFIX) not in known:
            problems.append(f"{name}: described but not registered in dist/known/nodes.json")
    return checked, problems


# --- parameters of the used (type, version) pairs -----------------------------------------------


def _condition_holds(condition: Any, version: Number) -> bool:
    if not isinstance(condition, dict) or "_cnd" not in condition:
        return bool(_num(condition) == version) if isinstance(condition, int | float) else False
    ((op, value),) = condition["_cnd"].items()
    checks = {
        "eq": lambda: version == value,
        "not": lambda: version != value,
        "gte": lambda: version >= value,
        "lte": lambda: version <= value,
        "gt": lambda: version > value,
        "lt": lambda: version < value,
        "between": lambda: value["from"] <= version <= value["to"],
    }
    if op not in checks:
        raise ValueError(f"unsupported @version condition {condition!r}")
    return bool(checks[op]())


def applies_to(prop: dict[str, Any], version: Number) -> bool:
    """Whether a property exists for ``version`` (only the @version display options are decisive)."""
    options = prop.get("displayOptions") or {}
    show = (options.get("show") or {}).get("@version")
    hide = (options.get("hide") or {}).get("@version")
    if show is not None and not any(_condition_holds(c, version) for c in show):
        return False
    return not (hide is not None and any(_condition_holds(c, version) for c in hide))


def _merge(schema: dict[str, Any], name: str, entry: dict[str, Any]) -> None:
    """Properties may be declared several times (per display condition): union them."""
    if name not in schema:
        schema[name] = entry
        return
    old = schema[name]
    if old.get("values") is not None or entry.get("values") is not None:
        old["values"] = sorted(set(old.get("values") or []) | set(entry.get("values") or []), key=str)
    if entry.get("children"):
        children = old.setdefault("children", {})
        for child, sub in entry["children"].items():
            _merge(children, child, sub)
    if old.get("type") != entry.get("type"):
        old["type"] = "mixed"


def property_schema(props: Iterable[dict[str, Any]], version: Number) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    for prop in props:
        if "name" not in prop or not applies_to(prop, version):
            continue
        kind = prop.get("type")
        entry: dict[str, Any] = {"type": kind}
        if kind in ("options", "multiOptions") and isinstance(prop.get("options"), list):
            values = [o.get("value") for o in prop["options"] if isinstance(o, dict) and "value" in o]
            # Options loaded at run time (loadOptionsMethod) have no fixed list.
            entry["values"] = sorted({v for v in values if v is not None}, key=str) if values else None
        elif kind == "collection":
            entry["children"] = property_schema(prop.get("options") or [], version)
        elif kind == "fixedCollection":
            entry["children"] = {
                group["name"]: {
                    "type": "group",
                    "children": property_schema(group.get("values") or [], version),
                }
                for group in prop.get("options") or []
            }
        _merge(schema, prop["name"], entry)
    return schema


def used_node_versions(examples: Path) -> set[tuple[str, Number]]:
    used: set[tuple[str, Number]] = set()
    for path in sorted(examples.glob("*.json")):
        workflow = json.loads(path.read_text())
        if isinstance(workflow, dict) and isinstance(workflow.get("nodes"), list):
            used.update((n["type"], _num(n["typeVersion"])) for n in workflow["nodes"])
    return used


def parameters_for(
    descriptions: list[dict[str, Any]], used: set[tuple[str, Number]]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    parameters: dict[str, Any] = {}
    credentials: dict[str, set[str]] = {}
    for name, version in sorted(used, key=lambda item: (item[0], float(item[1]))):
        short = name.removeprefix(PREFIX)
        matching = [d for d in descriptions if d["name"] == short and version in _versions(d["version"])]
        if not matching:
            continue  # the version test reports it
        description = matching[0]
        parameters[f"{name}@{version}"] = property_schema(description.get("properties") or [], version)
        creds = credentials.setdefault(name, set())
        creds.update(c["name"] for c in description.get("credentials") or [])
    return parameters, {k: sorted(v) for k, v in sorted(credentials.items())}


# --- main ---------------------------------------------------------------------------------------


def build(package: Package, meta: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    manifest = package.json("package.json")
    descriptions: list[dict[str, Any]] = package.json("dist/types/nodes.json")
    nodes = described_versions(descriptions)
    checked, problems = cross_check(package, nodes)
    parameters, credentials = parameters_for(descriptions, used_node_versions(EXAMPLES))
    snapshot = {
        "package": manifest["name"],
        "version": manifest["version"],
        "tarball": meta.get("tarball", ""),
        "integrity": meta.get("integrity", ""),
        "generated_by": "scripts/n8n_node_versions.py",
        "sources": {
            "versions": "dist/types/nodes.json",
            "cross_checked_against_sources": checked,
            "parameters_for": "the (type, typeVersion) pairs used in examples/n8n/*.json",
        },
        "nodes": nodes,
        "credentials": credentials,
        "parameters": parameters,
    }
    return snapshot, problems


def render(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--version", default=DEFAULT_VERSION, help=f"n8n-nodes-base version ({DEFAULT_VERSION})"
    )
    parser.add_argument("--tarball", type=Path, help="use this tarball instead of `npm pack`")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true", help="compare with --output instead of writing it")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        meta: dict[str, str] = {}
        tarball = args.tarball
        if tarball is None:
            tarball, meta = npm_pack(args.version, Path(tmp))
        elif args.output.exists():
            old = json.loads(args.output.read_text())
            meta = {k: old.get(k, "") for k in ("tarball", "integrity")}
        snapshot, problems = build(Package(tarball), meta)

    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    used = used_node_versions(EXAMPLES)
    bad = [p for p in problems if any(p.startswith(name + ":") for name, _ in used)]
    if bad:
        print(
            "error: a node type used by the examples disagrees between description and source",
            file=sys.stderr,
        )
        return 1
    text = render(snapshot)
    if args.check:
        if not args.output.exists() or args.output.read_text() != text:
            print(f"{args.output} is out of date; run scripts/n8n_node_versions.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date ({snapshot['package']} {snapshot['version']})")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(
        f"wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}: "
        f"{snapshot['package']} {snapshot['version']}, {len(snapshot['nodes'])} node types "
        f"({snapshot['sources']['cross_checked_against_sources']} cross-checked against their sources), "
        f"parameters for {len(snapshot['parameters'])} used type versions"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
