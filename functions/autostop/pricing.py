"""Hourly prices used for cost estimates (extended by the cost issue).

On-demand Linux prices in USD per hour, AWS price list, checked 2026-11.
``HOURLY_PRICE_USD`` overrides the table.
"""

from __future__ import annotations

ON_DEMAND_USD_PER_HOUR: dict[tuple[str, str], float] = {
    ("us-east-1", "g4dn.xlarge"): 0.526,
    ("us-east-1", "g4dn.2xlarge"): 0.752,
    ("us-east-1", "g5.xlarge"): 1.006,
    ("us-east-1", "g5.2xlarge"): 1.212,
    ("us-east-1", "g6.xlarge"): 0.8048,
    ("us-east-1", "g6.2xlarge"): 0.9776,
    ("us-east-1", "g6e.xlarge"): 1.861,
}


def hourly_price(instance_type: str, region: str, override: float | None = None) -> float | None:
    """Price per hour for ``instance_type`` in ``region``; None when unknown."""
    if override is not None:
        return override
    return ON_DEMAND_USD_PER_HOUR.get((region, instance_type))
