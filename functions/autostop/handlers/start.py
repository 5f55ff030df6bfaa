"""Start the GPU instance (n8n, CLI): idempotent for every EC2 state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from autostop import control
from autostop.events import parse_start
from autostop.handlers import _common
from autostop.handlers._common import budget_seconds, config, entry, logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@entry
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    request = parse_start(event)
    cfg = config()
    logger.append_keys(instance_id=cfg.instance_id, wait=request.wait)
    answer, outcome = control.start(
        cfg,
        _common.clock(),
        request,
        request_id=getattr(context, "aws_request_id", None),
        budget_s=budget_seconds(context),
    )
    if outcome.started:
        metrics.add_metric(name="Starts", unit=MetricUnit.Count, value=1)
    if outcome.ready_wait_s is not None:
        metrics.add_metric(name="StartToReadySeconds", unit=MetricUnit.Seconds, value=outcome.ready_wait_s)
    logger.info(
        "start handled",
        extra={
            "state": answer["state"],
            "decision": outcome.decision,
            "reason": outcome.reason,
            "instance_type": outcome.instance_type,
            "capacity_short": outcome.extra.get("capacity_short", []),
            "ready": answer["ready"],
        },
    )
    if "stop_intent" in outcome.extra:
        logger.info("start met a stop under way", extra={"stop_intent": outcome.extra["stop_intent"]})
    if "ledger_error" in outcome.extra:
        logger.warning("usage ledger not updated", extra={"error": outcome.extra["ledger_error"]})
    return answer
