"""``gpu-autostop-tools TOOL ...``: the offline tools (the make targets call them).

cost          the monthly bill before deploying (calculator)
simulate      replay job traces through the stop policies (the runtime's very ``decide``)
prices        refresh prices.json from the AWS Price List API (needs credentials)
price-table   the built-in price table with its sources
traces        regenerate the sample traces in examples/traces/
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

TOOLS = {
    "cost": "calculator",
    "simulate": "simulate",
    "prices": "prices",
    "price-table": "price_table",
    "traces": "traces",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in TOOLS:
        print(__doc__, file=sys.stderr if args and args[0] not in ("-h", "--help") else sys.stdout)
        return 0 if args and args[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"gpu_autostop_tools.{TOOLS[args[0]]}")
    code: int = module.main(args[1:])
    return code


if __name__ == "__main__":
    raise SystemExit(main())
