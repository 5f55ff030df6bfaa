"""Build build/functions.zip: one deterministic Lambda package for all functions.

The zip holds the ``autostop`` package, the contract module it shares with the agent
(``contract/autostop_contract.py``, copied to the zip's top level, where Lambda imports it from) and
its runtime dependencies for the
python3.12 runtime on x86_64 (manylinux wheels only; nothing is compiled for the
build machine). boto3/botocore are left out: the Lambda runtime provides them.

Determinism: entries are sorted, every entry has the same timestamp (1980-01-01)
and mode (0644 files), and bytecode caches and pip's RECORD files (they name the build
venv) are skipped, so two builds of the same tree, from .venv or .venv-deploy, are
byte-identical and Terraform sees no diff.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "functions" / "requirements.txt"
SOURCE = ROOT / "functions" / "autostop"
CONTRACT = ROOT / "contract" / "autostop_contract.py"
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
SKIP_DIRS = {"__pycache__", "bin"}
SKIP_SUFFIXES = {".pyc", ".pyo"}
PLATFORM_ARGS = [
    "--platform",
    "manylinux2014_x86_64",
    "--platform",
    "manylinux_2_28_x86_64",
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
    "--only-binary=:all:",
]


def install_dependencies(deps_dir: Path) -> None:
    """Install the pinned runtime dependencies into deps_dir (cached by requirements hash)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = deps_dir / ".requirements.sha256"
    if stamp.exists() and stamp.read_text() == digest:
        return
    if deps_dir.exists():
        shutil.rmtree(deps_dir)
    deps_dir.mkdir(parents=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--no-deps",  # every transitive dependency is pinned in the file
            "--target",
            str(deps_dir),
            *PLATFORM_ARGS,
            "-r",
            str(REQUIREMENTS),
        ],
        check=True,
    )
    stamp.write_text(digest)


def collect(base: Path, prefix: str = "") -> dict[str, Path]:
    """Map archive names to files under base, skipping caches and scripts."""
    entries: dict[str, Path] = {}
    for path in base.rglob("*"):
        rel = path.relative_to(base)
        if any(part in SKIP_DIRS for part in rel.parts) or not path.is_file():
            continue
        if path.suffix in SKIP_SUFFIXES or path.name.startswith(".requirements"):
            continue
        # pip's RECORD lists the skipped bin/ scripts with the hash of their shebang, which names the
        # build venv's python: the zip would differ between .venv and .venv-deploy (or two machines).
        # Nothing reads RECORD at run time (importlib.metadata reads METADATA).
        if path.name == "RECORD" and path.parent.name.endswith(".dist-info"):
            continue
        entries[prefix + rel.as_posix()] = path
    return entries


def write_zip(entries: dict[str, Path], output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100644 & 0xFFFF) << 16
            info.create_system = 3  # unix, so the mode above is honoured
            archive.writestr(info, entries[name].read_bytes(), compresslevel=9)
    tmp.replace(output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "build" / "functions.zip")
    parser.add_argument("--deps-dir", type=Path, default=ROOT / "build" / "deps")
    args = parser.parse_args(argv)

    install_dependencies(args.deps_dir)
    entries = collect(args.deps_dir)
    entries.update(collect(SOURCE, prefix="autostop/"))
    entries[CONTRACT.name] = CONTRACT
    write_zip(entries, args.output)
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    size = args.output.stat().st_size
    print(
        f"{args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}: "
        f"{size} bytes, {len(entries)} files, sha256 {digest}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
