"""Report the instance's state and whether ComfyUI is ready."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autostop import control
from autostop.events import parse_status
from autostop.handlers import _common
from autostop.handlers._common import config, entry, logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@entry
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    parse_status(event)
    cfg = config()
    logger.append_keys(instance_id=cfg.instance_id)
    answer = control.status(cfg, _common.clock())
    logger.info(
        "status handled",
        extra={"state": answer["state"], "ready": answer["ready"], "agent": answer["agent"]},
    )
    if answer["agent_problem"]:
        logger.warning("agent state record invalid", extra={"problem": answer["agent_problem"]})
    return answer
