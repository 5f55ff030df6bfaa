"""Stop the GPU instance when it is idle (alarm, SNS, schedule) or when forced (manual)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from autostop import control
from autostop.events import parse_stop
from autostop.handlers import _common
from autostop.handlers._common import config, entry, logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@entry
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    trigger = parse_stop(event)
    cfg = config()
    logger.append_keys(instance_id=cfg.instance_id, trigger=trigger.kind, alarm=trigger.alarm_name)
    answer, outcome = control.stop(
        cfg, _common.clock(), trigger, request_id=getattr(context, "aws_request_id", None)
    )
    if outcome.stopped:
        metrics.add_metric(name="Stops", unit=MetricUnit.Count, value=1)
    if outcome.decision == "hard_cap":
        metrics.add_metric(name="HardCapStops", unit=MetricUnit.Count, value=1)
    elif outcome.decision not in ("not_running", "hard_cap"):
        metrics.add_metric(name="StopsDeclined", unit=MetricUnit.Count, value=1)
    logger.info(
        "stop handled",
        extra={
            "decision": outcome.decision,
            "reason": outcome.reason,
            "stopped": outcome.stopped,
            "idle_minutes": answer["idle_minutes"],
            "agent_silent": answer["agent_silent"],
        },
    )
    if "ledger_error" in outcome.extra:
        logger.warning("usage ledger not updated", extra={"error": outcome.extra["ledger_error"]})
    _warn_distrusted(outcome.extra)
    return answer


def _warn_distrusted(extra: dict[str, Any]) -> None:
    """Say in the log what was not believed (an invalid record, a lease in the future) and why."""
    if "agent_invalid" in extra:
        logger.warning(
            "agent state record invalid: treated as silent", extra={"problem": extra["agent_invalid"]}
        )
    if "lease_problem" in extra:
        logger.warning("start lease distrusted", extra={"problem": extra["lease_problem"]})
    if "silent_alert" in extra:
        logger.info("silent agent alert", extra={"silent_alert": extra["silent_alert"]})
    if "intent_error" in extra:
        logger.warning("stop intent not resolved", extra={"error": extra["intent_error"]})
