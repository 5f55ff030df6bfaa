"""The weekly cost report (EventBridge cron): Cost Explorer and the project's own figures by email."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from autostop import cost_report
from autostop.cost_events import parse_report
from autostop.handlers import _common
from autostop.handlers._common import config, entry, logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@entry
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    request = parse_report(event)
    cfg = config()
    logger.append_keys(instance_id=cfg.instance_id)
    answer = cost_report.run(cfg, _common.clock().now(), send=request.send)
    if answer["sent"]:
        metrics.add_metric(name="CostReports", unit=MetricUnit.Count, value=1)
    logger.info(
        "cost report handled",
        extra={
            "decision": "sent" if answer["sent"] else "built",
            "cost_explorer": answer["cost_explorer"],
            "reason": answer["cost_explorer_error"] or "",
            "month_to_date_usd": answer["month_to_date_usd"],
            "own_estimate_usd": answer["own_estimate_usd"],
        },
    )
    return answer
