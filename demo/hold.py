"""Hold a `terraform test` run open while the demo drives the applied stack.

The demo's last run block calls this through a local-exec provisioner: it writes
the applied stack's outputs to ``--outputs-file`` for the demo, then waits until
the demo writes ``--done-file`` (or the timeout passes). `terraform test` then
destroys the stack, so the demo ends with a real destroy against the emulator.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", required=True, help="the stack outputs as JSON")
    parser.add_argument("--outputs-file", type=Path, required=True)
    parser.add_argument("--done-file", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)

    outputs = json.loads(args.outputs)
    tmp = args.outputs_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(outputs, indent=2, sort_keys=True))
    tmp.replace(args.outputs_file)  # the demo sees the whole file or none
    deadline = time.monotonic() + args.timeout
    while not args.done_file.exists():
        if time.monotonic() > deadline:
            print(f"hold: no {args.done_file} after {args.timeout:.0f} s; letting terraform clean up")
            return 0
        time.sleep(0.2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
