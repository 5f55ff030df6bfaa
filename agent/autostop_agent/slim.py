"""Slim copies of the botocore data the agent's two clients load: about 12 MB less resident memory.

Creating any client makes botocore parse its full ``endpoints.json`` (1.2 MB of
JSON, every service in every region) and the whole service model (SSM has some
150 operations). The agent calls three operations. ``build`` writes trimmed
copies (only ``ssm`` and ``monitoring`` in the endpoints, only PutParameter,
GetParameter and PutMetricData with the shapes they reach) into a directory
that is put first on the client session's data path; botocore finds everything
else (partitions, endpoint rule sets) in its own data as usual.

``build`` parses the full files, so the agent runs it in a child process
(``python -m autostop_agent.slim DIR``) and its own peak memory never includes
them. The directory carries a stamp with the botocore version and is rebuilt
when botocore changes; if anything fails the agent uses botocore's full data.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT = 1
#: service (botocore data directory) -> the operations the agent calls
OPERATIONS = {"ssm": ("PutParameter", "GetParameter"), "cloudwatch": ("PutMetricData",)}
#: endpoint prefixes of those services in endpoints.json
ENDPOINT_SERVICES = ("ssm", "monitoring")


def stamp() -> str:
    import botocore

    return f"format {FORMAT}, botocore {botocore.__version__}"


def _botocore_data() -> Path:
    import botocore

    return Path(botocore.__file__).parent / "data"


def _load(path: Path) -> Any:
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    with gzip.open(path.with_name(path.name + ".gz"), "rt", encoding="utf-8") as handle:
        return json.load(handle)


def _latest_version(service_dir: Path) -> str:
    return sorted(p.name for p in service_dir.iterdir() if p.is_dir())[-1]


def trim_model(model: dict[str, Any], operations: tuple[str, ...]) -> dict[str, Any]:
    """The model with only ``operations`` and the shapes they reach; documentation dropped."""
    shapes: dict[str, Any] = model["shapes"]
    keep: set[str] = set()
    pending: list[str] = []
    ops = {}
    for name in operations:
        op = {k: v for k, v in model["operations"][name].items() if k != "documentation"}
        ops[name] = op
        pending += [op[k]["shape"] for k in ("input", "output") if k in op]
        pending += [e["shape"] for e in op.get("errors", [])]
    while pending:
        name = pending.pop()
        if name in keep:
            continue
        keep.add(name)
        shape = shapes[name]
        pending += [shape[k]["shape"] for k in ("member", "key", "value") if k in shape]
        pending += [m["shape"] for m in shape.get("members", {}).values()]
    trimmed = {}
    for name in sorted(keep):
        shape = {k: v for k, v in shapes[name].items() if k != "documentation"}
        if "members" in shape:
            shape["members"] = {
                m: {k: v for k, v in spec.items() if k != "documentation"}
                for m, spec in shape["members"].items()
            }
        trimmed[name] = shape
    out = {k: v for k, v in model.items() if k not in ("operations", "shapes", "documentation")}
    out["operations"], out["shapes"] = ops, trimmed
    return out


def build(dest: Path) -> None:
    """Write the slim data into ``dest`` (replacing it)."""
    source = _botocore_data()
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".slim-", dir=dest.parent))
    try:
        endpoints = _load(source / "endpoints.json")
        for partition in endpoints["partitions"]:
            partition["services"] = {k: v for k, v in partition["services"].items() if k in ENDPOINT_SERVICES}
        (work / "endpoints.json").write_text(json.dumps(endpoints), encoding="utf-8")
        for service, operations in OPERATIONS.items():
            version = _latest_version(source / service)
            model = _load(source / service / version / "service-2.json")
            (work / service / version).mkdir(parents=True)
            (work / service / version / "service-2.json").write_text(
                json.dumps(trim_model(model, operations)), encoding="utf-8"
            )
        (work / "STAMP").write_text(stamp(), encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(work, dest)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def ensure(dest: Path) -> Path | None:
    """``dest`` with current slim data (built in a child process when missing or stale), else None."""
    try:
        if (dest / "STAMP").read_text(encoding="utf-8") == stamp():
            return dest
    except OSError:
        pass
    package_parent = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "autostop_agent.slim", str(dest)],
            env={**os.environ, "PYTHONPATH": path},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode == 0 and (dest / "STAMP").read_text(encoding="utf-8") == stamp():
            return dest
        log.warning("slim botocore data not built (%s); using the full data", result.stderr.strip()[-300:])
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("slim botocore data not built (%s); using the full data", exc)
    return None


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m autostop_agent.slim DIRECTORY")
    build(Path(sys.argv[1]))
