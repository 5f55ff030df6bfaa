"""Refresh the price table from AWS: ``make prices`` (optional; nothing needs it at run time).

    gpu-autostop-tools prices --out prices.json [--region us-east-1 ...]

Reads on-demand Linux prices and gp3 storage from the AWS Price List API (the
``pricing`` client, endpoint in us-east-1) and the last hour's spot prices from
``ec2:DescribeSpotPriceHistory`` in each region (median over availability zones), and
writes an override file that ``--prices`` / ``AUTOSTOP_PRICES_FILE`` apply. Needs AWS
credentials allowed ``pricing:GetProducts`` and ``ec2:DescribeSpotPriceHistory``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from autostop.pricing import INSTANCE_TYPES, REGIONS

PRICING_REGION = "us-east-1"


def _filters(**attributes: str) -> list[dict[str, str]]:
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in attributes.items()]


def on_demand_usd(price_list: Iterable[str]) -> float | None:
    """The hourly on-demand price in a GetProducts answer's PriceList (JSON strings); None if absent."""
    prices = []
    for item in price_list:
        product = json.loads(item)
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = dimension.get("pricePerUnit", {}).get("USD")
                if usd is not None and dimension.get("unit") in ("Hrs", "GB-Mo") and float(usd) > 0:
                    prices.append(float(usd))
    return min(prices) if prices else None


def spot_usd(history: Iterable[dict[str, Any]]) -> float | None:
    """Median of the latest spot price per availability zone."""
    latest: dict[str, tuple[datetime, float]] = {}
    for entry in history:
        zone, when, price = entry["AvailabilityZone"], entry["Timestamp"], float(entry["SpotPrice"])
        if zone not in latest or when > latest[zone][0]:
            latest[zone] = (when, price)
    return statistics.median(p for _, p in latest.values()) if latest else None


def _products(client: Any, **attributes: str) -> list[str]:
    items: list[str] = []
    kwargs: dict[str, Any] = {
        "ServiceCode": "AmazonEC2",
        "Filters": _filters(**attributes),
        "MaxResults": 100,
    }
    while True:
        response = client.get_products(**kwargs)
        items += response.get("PriceList", [])
        if not response.get("NextToken"):
            return items
        kwargs["NextToken"] = response["NextToken"]


def refresh(
    regions: Iterable[str], types: Iterable[str], *, pricing: Any = None, ec2_for: Any = None
) -> dict[str, Any]:
    """The override document; ``pricing`` and ``ec2_for(region)`` are injectable for tests."""
    pricing = pricing or boto3.client("pricing", region_name=PRICING_REGION)
    ec2_for = ec2_for or (lambda region: boto3.client("ec2", region_name=region))
    now = datetime.now(UTC)
    instances: dict[str, dict[str, Any]] = {}
    gp3: dict[str, float] = {}
    for region in regions:
        ec2 = ec2_for(region)
        row: dict[str, Any] = {}
        for itype in types:
            on_demand = on_demand_usd(
                _products(
                    pricing,
                    instanceType=itype,
                    regionCode=region,
                    operatingSystem="Linux",
                    tenancy="Shared",
                    preInstalledSw="NA",
                    capacitystatus="Used",
                )
            )
            if on_demand is None:
                row[itype] = None  # not offered in this region
                continue
            history = ec2.describe_spot_price_history(
                InstanceTypes=[itype],
                ProductDescriptions=["Linux/UNIX"],
                StartTime=now - timedelta(hours=1),
            ).get("SpotPriceHistory", [])
            spot = spot_usd(history)
            row[itype] = {"on_demand": on_demand, **({"spot": round(spot, 4)} if spot is not None else {})}
        instances[region] = row
        storage = on_demand_usd(
            _products(pricing, productFamily="Storage", volumeApiName="gp3", regionCode=region)
        )
        if storage is not None:
            gp3[region] = storage
    return {
        "_comment": "written by `make prices` (gpu-autostop-tools prices) from the AWS Price List API",
        "generated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "instances": instances,
        "services": {"ebs_gp3_gb_month": gp3} if gp3 else {},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-autostop-tools prices", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="prices.json", help="override file to write (default prices.json)")
    parser.add_argument("--region", action="append", help=f"regions (default: {', '.join(REGIONS)})")
    parser.add_argument("--instance-type", action="append", help="types (default: the table's)")
    args = parser.parse_args(argv)
    document = refresh(args.region or REGIONS, args.instance_type or INSTANCE_TYPES)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")
    print(f"wrote {args.out}; use it with --prices {args.out} or AUTOSTOP_PRICES_FILE={args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
