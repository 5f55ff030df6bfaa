"""Build build/agent.tar.gz: the on-instance agent, as the instance's bootstrap downloads it from S3.

The archive holds the ``agent/`` directory (with ``agent/install.sh`` at its top, as the bootstrap
runs it) and, beside it, ``contract/``: the contract module the agent shares with the functions
(``contract/autostop_contract.py`` and its pyproject), which install.sh installs first. Nothing
else. Deterministic like build/functions.zip: sorted entries, fixed timestamps, owner 0:0, fixed
modes, no bytecode caches, and a gzip header without a time stamp, so an unchanged agent gives an
unchanged archive and Terraform sees no diff.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXED_MTIME = 315532800  # 1980-01-01T00:00:00Z, as in build_zip.py
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}


def collect(source: Path) -> list[Path]:
    """Files under source, sorted, without caches."""
    files = []
    for path in source.rglob("*"):
        rel = path.relative_to(source)
        if any(part in SKIP_DIRS for part in rel.parts) or not path.is_file():
            continue
        if path.suffix in SKIP_SUFFIXES:
            continue
        files.append(path)
    return sorted(files, key=lambda p: p.relative_to(source).as_posix())


CONTRACT = ROOT / "contract"
CONTRACT_FILES = ("autostop_contract.py", "pyproject.toml")


def members(source: Path, contract: Path) -> list[tuple[str, Path]]:
    """(archive name, file): the agent under agent/ (the bootstrap runs agent/install.sh), the
    contract under contract/."""
    named = [(f"agent/{path.relative_to(source).as_posix()}", path) for path in collect(source)]
    named += [(f"contract/{name}", contract / name) for name in CONTRACT_FILES]
    return sorted(named)


def build(source: Path, output: Path, contract: Path = CONTRACT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, path in members(source, contract):
            info = tarfile.TarInfo(name)
            data = path.read_bytes()
            info.size = len(data)
            info.mtime = FIXED_MTIME
            info.mode = 0o755 if path.stat().st_mode & 0o111 or path.suffix == ".sh" else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            archive.addfile(info, io.BytesIO(data))
    packed = gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(packed)
    tmp.replace(output)
    return packed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT / "agent")
    parser.add_argument("--output", type=Path, default=ROOT / "build" / "agent.tar.gz")
    args = parser.parse_args(argv)

    if not (args.source / "install.sh").is_file():
        print(
            f"{args.source}/install.sh not found: the agent (agent/, with install.sh at its top) "
            "must be in the tree before the instance can be deployed",
            file=sys.stderr,
        )
        return 1
    packed = build(args.source, args.output)
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"{shown}: {len(packed)} bytes, sha256 {hashlib.sha256(packed).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
