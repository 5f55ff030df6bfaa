"""The one place boto3 clients are made (at call time, never at import time)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config as BotoConfig

_BOTO_CONFIG = BotoConfig(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20)


def client(service: str) -> Any:
    """A client for ``service`` with bounded retries and timeouts."""
    return boto3.client(service, config=_BOTO_CONFIG)  # type: ignore[call-overload]
