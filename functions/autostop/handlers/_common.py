"""What every handler shares: the Powertools Logger and Metrics, config loaded once, the wrapper."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

from autostop.clock import Clock, SystemClock
from autostop.config import Config, load_config
from autostop.errors import RequestError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "gpu-autostop")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "GpuAutostop")
#: Time kept back from the Lambda timeout when a handler waits.
DEADLINE_MARGIN_S = 10.0

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

Handler = Callable[[Any, "LambdaContext"], dict[str, Any]]


@functools.cache
def config() -> Config:
    """The configuration, read from the environment on first use and kept for warm invocations."""
    return load_config()


def clock() -> Clock:
    """The clock handlers use (tests replace it)."""
    return SystemClock()


def budget_seconds(context: LambdaContext) -> float | None:
    """Seconds this invocation may still wait, or None when the context does not say."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return max(float(remaining()) / 1000.0 - DEADLINE_MARGIN_S, 0.0)


def entry(run: Handler) -> Handler:
    """Wrap a handler body: structured logging, metrics flush, RequestError -> ok:false answer."""

    @functools.wraps(run)
    def wrapper(event: Any, context: LambdaContext) -> dict[str, Any]:
        try:
            return run(event, context)
        except RequestError as exc:
            logger.warning(
                "request refused",
                extra={"decision": "refused", "error_code": exc.code, "reason": exc.message},
            )
            return exc.answer()

    return metrics.log_metrics(logger.inject_lambda_context(clear_state=True)(wrapper))
