"""Print the Lambda package's size and each handler's cold import time against the floor.

The floor is what no handler can avoid: ``import boto3`` plus the Powertools
Logger and Metrics (imported and constructed). Each figure is the median of
several fresh interpreter runs, the commands interleaved so drift hits all alike.
Run it with ``make bench`` (which builds the zip first).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMER = "import time; t0 = time.perf_counter(); {body}; print(time.perf_counter() - t0)"
FLOOR = (
    "import boto3; from aws_lambda_powertools import Logger, Metrics; "
    "Logger(service='bench'); Metrics(namespace='Bench', service='bench')"
)
HANDLERS = {
    "start": "import autostop.handlers.start",
    "status": "import autostop.handlers.status",
    "stop": "import autostop.handlers.stop",
    "cost_report": "import autostop.handlers.cost_report",
    "budget": "import autostop.handlers.budget",
}


def once(body: str, pythonpath: Path) -> float:
    env = {"PYTHONPATH": str(pythonpath), "PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", TIMER.format(body=body)], env=env, check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", type=Path, default=ROOT / "build" / "functions.zip")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)

    size = args.zip.stat().st_size
    print(f"package {args.zip.name}: {size:,} bytes ({size / 1024 / 1024:.2f} MiB; target < 5 MiB)")
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(args.zip) as archive:
            archive.extractall(tmp)
        path = Path(tmp)
        bodies = {"floor": FLOOR, **HANDLERS}
        for body in bodies.values():  # warm the OS file cache; bytecode is compiled each run alike
            once(body, path)
        samples: dict[str, list[float]] = {name: [] for name in bodies}
        for _ in range(args.runs):
            for name, body in bodies.items():
                samples[name].append(once(body, path))
    floor = statistics.median(samples["floor"])
    print(f"cold import, median of {args.runs} fresh interpreters (no bytecode cache):")
    print(f"  {'floor':<11} {floor * 1000:8.1f} ms  (boto3 + Powertools Logger and Metrics)")
    worst = 0.0
    for name in HANDLERS:
        median = statistics.median(samples[name])
        ratio = median / floor
        worst = max(worst, ratio)
        print(f"  {name:<11} {median * 1000:8.1f} ms  {ratio:.2f}x floor (target <= 1.20x)")
    print(f"worst handler ratio: {worst:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
