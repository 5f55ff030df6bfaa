"""Instance id and region from the EC2 instance metadata service, IMDSv2 (token first)."""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

TOKEN_TTL_SECONDS = 300
_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


class ImdsError(Exception):
    """The metadata service did not answer usefully."""


@dataclass(frozen=True)
class Identity:
    instance_id: str
    region: str


def _request(endpoint: str, method: str, path: str, headers: dict[str, str], timeout: float) -> str:
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname or "169.254.169.254", parts.port or 80, timeout=timeout)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        body = response.read(4096).decode("utf-8", "replace").strip()
        if response.status != 200:
            raise ImdsError(f"{method} {path}: HTTP {response.status}")
        return body
    except (OSError, http.client.HTTPException) as exc:
        raise ImdsError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
    finally:
        conn.close()


def fetch_identity(endpoint: str, timeout: float = 2.0) -> Identity:
    token = _request(
        endpoint,
        "PUT",
        "/latest/api/token",
        {"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
        timeout,
    )
    if not token:
        raise ImdsError("PUT /latest/api/token: empty token")
    headers = {"X-aws-ec2-metadata-token": token}
    instance_id = _request(endpoint, "GET", "/latest/meta-data/instance-id", headers, timeout)
    region = _request(endpoint, "GET", "/latest/meta-data/placement/region", headers, timeout)
    if not _INSTANCE_ID.match(instance_id) or not _REGION.match(region):
        raise ImdsError(f"unexpected metadata: instance-id {instance_id[:40]!r}, region {region[:40]!r}")
    return Identity(instance_id=instance_id, region=region)
