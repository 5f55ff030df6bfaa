"""The agent's only AWS calls: ssm:PutParameter / GetParameter on its record, cloudwatch:PutMetricData.

boto3 is imported and clients are made on first use (never at import: moto must
intercept them, and ``--once`` never loads boto3 at all). One boto3 session is
shared by both clients, so the SDK's data files are loaded once.

botocore retries once at most with short timeouts; the agent's own Backoff
spaces further attempts (5 s doubling to 5 min, with jitter), so throttling or
an outage never blocks the poll loop for long and never ends the process.
``AWS_ENDPOINT_URL`` (emulator) is honoured by the SDK itself.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from autostop_agent import slim

log = logging.getLogger(__name__)

ClientFactory = Callable[[str], Any]


class Backoff:
    """Exponential backoff on the monotonic clock: ``base`` doubling up to ``cap``, with jitter."""

    def __init__(
        self, base: float = 5.0, cap: float = 300.0, rng: Callable[[], float] = random.random
    ) -> None:
        self.base, self.cap, self._rng = base, cap, rng
        self.failures = 0
        self.next_at: float | None = None

    def ready(self, now: float) -> bool:
        return self.next_at is None or now >= self.next_at

    def failed(self, now: float) -> float:
        self.failures += 1
        delay: float = min(self.cap, self.base * 2.0 ** (self.failures - 1)) * (0.75 + 0.25 * self._rng())
        self.next_at = now + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self.next_at = None


def boto_factory(region: str, slim_dir: Path | None = None) -> ClientFactory:
    """Clients for ``region`` from one shared boto3 session (created lazily).

    With ``slim_dir``, the session reads the trimmed botocore data built there (see slim.py).
    """
    session: list[Any] = []

    def make(service: str) -> Any:
        import boto3
        import botocore.session
        from botocore.config import Config as BotoConfig

        if not session:
            core = botocore.session.get_session()
            data = slim.ensure(slim_dir) if slim_dir is not None else None
            if data is not None:
                extra = core.get_config_variable("data_path")
                core.set_config_variable("data_path", os.pathsep.join(filter(None, [str(data), extra])))
            session.append(boto3.session.Session(botocore_session=core, region_name=region))
        config = BotoConfig(
            retries={"mode": "standard", "max_attempts": 2}, connect_timeout=3, read_timeout=5
        )
        return session[0].client(service, config=config)

    return make


def _describe(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code", "?")
        return f"{code}: {response.get('Error', {}).get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


class AwsSink:
    def __init__(self, factory: ClientFactory) -> None:
        self._factory = factory
        self._clients: dict[str, Any] = {}

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._factory(service)
        return self._clients[service]

    def put_record(self, parameter: str, value: str) -> bool:
        try:
            self._client("ssm").put_parameter(Name=parameter, Value=value, Type="String", Overwrite=True)
        except Exception as exc:  # noqa: BLE001 - throttling, denial, outage: the caller backs off
            log.warning("PutParameter %s failed: %s", parameter, _describe(exc))
            return False
        return True

    def get_record(self, parameter: str) -> str | None:
        try:
            response = self._client("ssm").get_parameter(Name=parameter)
        except Exception as exc:  # noqa: BLE001 - missing or unreadable: nothing to restore
            log.info("GetParameter %s: %s (nothing restored)", parameter, _describe(exc))
            return None
        value = response.get("Parameter", {}).get("Value")
        return value if isinstance(value, str) else None

    def put_metrics(self, namespace: str, metric_data: Sequence[dict[str, Any]]) -> bool:
        try:
            self._client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=list(metric_data))
        except Exception as exc:  # noqa: BLE001 - as put_record
            log.warning("PutMetricData %s failed: %s", namespace, _describe(exc))
            return False
        return True
