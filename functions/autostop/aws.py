"""The one place boto3 clients are made: on first use (never at import time), then reused.

Reuse matters on Lambda: creating a client costs tens of milliseconds, and a warm
container keeps the cache. Tests call ``reset()`` so each mock gets fresh clients.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

_BOTO_CONFIG = BotoConfig(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20)
_clients: dict[str, Any] = {}
_lock = threading.Lock()


def _create(service: str) -> Any:
    return boto3.client(service, config=_BOTO_CONFIG)  # type: ignore[call-overload]


def client(service: str) -> Any:
    """A client for ``service`` with bounded retries and timeouts, made once per process."""
    with _lock:
        found = _clients.get(service)
        if found is None:
            found = _clients[service] = _create(service)
        return found


def reset() -> None:
    """Forget the clients (tests, or a change of credentials/region)."""
    with _lock:
        _clients.clear()
