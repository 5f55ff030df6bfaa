"""AWS Budgets -> SNS -> here: trip the hard cap (forced stop, flag, email). Forecasts never trip."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from autostop import cap
from autostop.config import ConfigError
from autostop.cost_events import parse_budget
from autostop.handlers import _common
from autostop.handlers._common import config, entry, logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@entry
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    notices = parse_budget(event)
    cfg = config()
    if not cfg.cap_parameter:
        raise ConfigError("environment variable CAP_PARAMETER is required by the budget function")
    logger.append_keys(instance_id=cfg.instance_id)
    answer = cap.on_budget(cfg, _common.clock().now(), notices)
    if answer["newly_tripped"]:
        metrics.add_metric(name="HardCapTrips", unit=MetricUnit.Count, value=1)
    logger.info(
        "budget notification handled",
        extra={
            "decision": "tripped" if answer["newly_tripped"] else "no_change",
            "stopped": answer["stopped"],
            "reason": "; ".join(answer["decisions"]),
        },
    )
    return answer
