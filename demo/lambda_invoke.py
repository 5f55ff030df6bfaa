"""Invoke one Lambda handler the way the Lambda runtime does: event JSON in, answer JSON out.

    python -m demo.lambda_invoke autostop.handlers.start.handler FUNCTION_NAME < event.json

The handler's own logs (Powertools JSON lines, EMF metrics) go to stderr, as they
would go to CloudWatch Logs; the answer is the last line on stdout.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import uuid
from contextlib import redirect_stdout


class Context:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    def __init__(self, function_name: str, timeout_s: float = 900.0) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "demo"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


def main(argv: list[str] | None = None) -> int:
    handler_path, function_name = (argv or sys.argv[1:])[:2]
    module_name, _, attribute = handler_path.rpartition(".")
    event = json.loads(sys.stdin.read() or "{}")
    with redirect_stdout(sys.stderr):  # logs and metrics are not the answer
        handler = getattr(importlib.import_module(module_name), attribute)
        answer = handler(event, Context(function_name))
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
