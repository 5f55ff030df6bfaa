"""Instance id and region from the EC2 instance metadata service, IMDSv2 (token first)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from autostop_agent import httpget

TOKEN_TTL_SECONDS = 300
#: Largest IMDS answer read (a token is 56 characters, an instance id 19, a region name < 20).
MAX_BYTES = 4096
_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


class ImdsError(Exception):
    """The metadata service did not answer usefully."""


@dataclass(frozen=True)
class Identity:
    instance_id: str
    region: str


def _request(
    endpoint: str,
    method: str,
    path: str,
    headers: dict[str, str],
    timeout: float,
    cancelled: Callable[[], bool],
) -> str:
    try:
        answer = httpget.request(
            endpoint, method, path, headers=headers, timeout=timeout, limit=MAX_BYTES, cancelled=cancelled
        )
    except httpget.HttpError as exc:
        raise ImdsError(str(exc)) from None
    if answer.status != 200:
        raise ImdsError(f"{method} {path}: HTTP {answer.status}")
    try:
        return answer.body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ImdsError(f"{method} {path}: not ASCII text") from None


def fetch_identity(
    endpoint: str, timeout: float = 2.0, *, cancelled: Callable[[], bool] = lambda: False
) -> Identity:
    """``timeout`` bounds each of the three requests (connect, headers and body together)."""
    token = _request(
        endpoint,
        "PUT",
        "/latest/api/token",
        {"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
        timeout,
        cancelled,
    )
    if not token:
        raise ImdsError("PUT /latest/api/token: empty token")
    headers = {"X-aws-ec2-metadata-token": token}
    instance_id = _request(endpoint, "GET", "/latest/meta-data/instance-id", headers, timeout, cancelled)
    region = _request(endpoint, "GET", "/latest/meta-data/placement/region", headers, timeout, cancelled)
    if not _INSTANCE_ID.match(instance_id) or not _REGION.match(region):
        raise ImdsError(f"unexpected metadata: instance-id {instance_id[:40]!r}, region {region[:40]!r}")
    return Identity(instance_id=instance_id, region=region)
