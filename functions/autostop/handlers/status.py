"""Report the instance's state and whether ComfyUI is ready."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from autostop import control
from autostop.clock import SystemClock
from autostop.events import parse_status
from autostop.handlers._common import config, entry, logger


@entry
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    parse_status(event)
    cfg = config()
    logger.append_keys(instance_id=cfg.instance_id)
    answer = control.status(cfg, SystemClock())
    logger.info(
        "status handled",
        extra={"state": answer["state"], "ready": answer["ready"], "agent": answer["agent"]},
    )
    return answer
