"""Write the three sample traces in examples/traces/ (deterministic: fixed seeds, no clock).

    gpu-autostop-tools traces                # or: make traces (run in the repository root)

Each trace is a CSV ``timestamp,duration_s`` for November 2026 (UTC): the time a job
arrives (n8n calls start, then queues the prompt) and how long it keeps the GPU busy.

* office-hours.csv: weekdays 09:00-18:00, two to five bursts a day of 4-25 images
  (SD/SDXL, ~6-60 s each, a few 2-4 minute upscales), a minute or so apart;
* nightly-batch.csv: every night at 02:00 a batch of 6-12 long renders (video or
  upscale, 6-25 minutes each) submitted one after another, as n8n's batch workflow does;
* hobby.csv: a sparse hobby month, about ten evening or weekend sessions of 3-15 images.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

#: Relative to the working directory: ``make traces`` runs in the repository root.
OUT = Path("examples") / "traces"
MONTH = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 30


def image_seconds(rng: random.Random) -> float:
    if rng.random() < 0.05:
        return rng.uniform(120, 240)  # an upscale
    return min(max(rng.lognormvariate(math.log(18), 0.5), 6.0), 60.0)


def office_hours(rng: random.Random) -> list[tuple[datetime, float]]:
    jobs = []
    for day in range(DAYS):
        date = MONTH + timedelta(days=day)
        if date.weekday() >= 5:
            continue
        for _ in range(rng.randint(2, 5)):
            at = date + timedelta(hours=9, seconds=rng.uniform(0, 8.5 * 3600))
            for _ in range(rng.randint(4, 25)):
                jobs.append((at, round(image_seconds(rng), 1)))
                at += timedelta(seconds=min(max(rng.expovariate(1 / 60), 5), 600))
    return jobs


def nightly_batch(rng: random.Random) -> list[tuple[datetime, float]]:
    jobs = []
    for day in range(DAYS):
        at = MONTH + timedelta(days=day, hours=2)
        for _ in range(rng.randint(6, 12)):
            duration = round(rng.uniform(6 * 60, 25 * 60), 1)
            jobs.append((at, duration))
            at += timedelta(seconds=duration + rng.uniform(5, 20))  # the next prompt after this one
    return jobs


def hobby(rng: random.Random) -> list[tuple[datetime, float]]:
    jobs = []
    days = sorted(rng.sample(range(DAYS), 10))
    for day in days:
        date = MONTH + timedelta(days=day)
        hour = rng.uniform(13, 17) if date.weekday() >= 5 else rng.uniform(19, 22.5)
        at = date + timedelta(hours=hour)
        for _ in range(rng.randint(3, 15)):
            jobs.append((at, round(min(max(rng.lognormvariate(math.log(35), 0.5), 15), 90), 1)))
            at += timedelta(seconds=rng.uniform(30, 300))
    return jobs


TRACES = {
    "office-hours.csv": (office_hours, 7),
    "nightly-batch.csv": (nightly_batch, 11),
    "hobby.csv": (hobby, 23),
}


def write(path: Path, jobs: list[tuple[datetime, float]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["timestamp", "duration_s"])
        for at, duration in sorted(jobs):
            out.writerow([at.strftime("%Y-%m-%dT%H:%M:%SZ"), f"{duration:g}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-autostop-tools traces", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (make, seed) in TRACES.items():
        jobs = make(random.Random(seed))  # noqa: S311 - sample data from fixed seeds, not secrets
        write(args.out / name, jobs)
        print(f"{args.out / name}: {len(jobs)} jobs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
