"""Show or reset the hard spend cap: ``gpu-autostop cap status|reset`` (``make cap-status``/``reset-cap``).

The cap itself (the flag, the estimate, trip and reset) is the runtime's ``autostop.cap``.
"""

from __future__ import annotations

import argparse
import os

from autostop_contract import iso

from autostop.cap import CAP_PARAMETER_ENV, read_state, reset
from autostop.clock import SystemClock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gpu-autostop cap", description="Show or reset gpu-autostop's hard spend cap."
    )
    parser.add_argument("command", choices=("status", "reset"))
    parser.add_argument(
        "--parameter",
        default=os.environ.get(CAP_PARAMETER_ENV, "/gpu-autostop/cap"),
        help=f"SSM parameter of the cap flag (default: ${CAP_PARAMETER_ENV} or /gpu-autostop/cap)",
    )
    parser.add_argument(
        "--extra-usd", type=float, default=0.0, help="reset: raise the cap this month by N USD"
    )
    args = parser.parse_args(argv)
    now = SystemClock().now()
    if args.command == "reset":
        if args.extra_usd < 0:
            parser.error("--extra-usd must not be negative")
        state = reset(args.parameter, now, args.extra_usd)
        extra = (
            f"; the cap is raised by ${state.extra_usd:g} until the end of {state.month}"
            if state.extra_usd
            else ""
        )
        print(f"hard cap reset ({args.parameter}){extra}. Starts are allowed again.")
        print("If the month-to-date estimate is still over the cap, the next start trips it again.")
        return 0
    state = read_state(args.parameter)
    if state.tripped:
        print(f"TRIPPED at {iso(state.tripped_at) or '?'} by {state.source or '?'}: {state.reason}")
        print("Starts are refused with BudgetExceeded. Reset: make reset-cap")
    else:
        allowance = state.extra_for(now)
        print("not tripped" + (f"; ${allowance:g} extra allowed this month" if allowance else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
