"""``gpu-autostop COMMAND ...``: the one operator command (the make targets call it).

start, status, stop and generate talk to the deployed functions (``client``); emergency-stop and
cap have their own options (``emergency``, ``cap``) and are handed the rest of the line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    own: dict[str, Callable[[list[str] | None], int]] = {}
    if args and args[0] == "emergency-stop":
        from gpu_autostop_cli import emergency

        own["emergency-stop"] = emergency.main
    elif args and args[0] == "cap":
        from gpu_autostop_cli import cap

        own["cap"] = cap.main
    if args and args[0] in own:
        return own[args[0]](args[1:])
    from gpu_autostop_cli import client

    return client.main(args)


if __name__ == "__main__":
    raise SystemExit(main())
