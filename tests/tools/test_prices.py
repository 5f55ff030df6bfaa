"""`make prices`: parsing a recorded-shape Price List answer and spot history, writing overrides."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.stub import ANY, Stubber

from autostop.pricing import load_price_book
from gpu_autostop_tools.prices import on_demand_usd, refresh, spot_usd


def price_list_item(instance_type: str, region: str, usd: str, unit: str = "Hrs") -> str:
    """One PriceList entry as GetProducts returns it (a JSON string), trimmed to the fields used."""
    sku = "JRTCKXETXF7Q2V6B"
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance" if unit == "Hrs" else "Storage",
                "attributes": {
                    "instanceType": instance_type,
                    "regionCode": region,
                    "operatingSystem": "Linux",
                    "tenancy": "Shared",
                    "preInstalledSw": "NA",
                    "capacitystatus": "Used",
                },
                "sku": sku,
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": unit,
                                "endRange": "Inf",
                                "description": f"${usd} per On Demand Linux {instance_type} Instance Hour",
                                "appliesTo": [],
                                "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7",
                                "beginRange": "0",
                                "pricePerUnit": {"USD": usd},
                            }
                        },
                        "sku": sku,
                        "effectiveDate": "2026-11-01T00:00:00Z",
                        "offerTermCode": "JRTCKXETXF",
                        "termAttributes": {},
                    }
                }
            },
            "version": "20261101000000",
            "publicationDate": "2026-11-01T00:00:00Z",
        }
    )


def test_on_demand_price_from_a_price_list_answer() -> None:
    assert on_demand_usd([price_list_item("g4dn.xlarge", "us-east-1", "0.5260000000")]) == 0.526
    assert on_demand_usd([]) is None


def test_spot_is_the_median_of_each_zones_latest_price() -> None:
    old, new = datetime(2026, 11, 22, 8, tzinfo=UTC), datetime(2026, 11, 22, 9, tzinfo=UTC)
    history = [
        {"AvailabilityZone": "us-east-1a", "Timestamp": old, "SpotPrice": "0.9"},
        {"AvailabilityZone": "us-east-1a", "Timestamp": new, "SpotPrice": "0.2"},
        {"AvailabilityZone": "us-east-1b", "Timestamp": new, "SpotPrice": "0.3"},
        {"AvailabilityZone": "us-east-1c", "Timestamp": new, "SpotPrice": "0.25"},
    ]
    assert spot_usd(history) == 0.25
    assert spot_usd([]) is None


def test_refresh_writes_an_override_file_the_calculator_reads(tmp_path: Path) -> None:
    pricing = boto3.client(
        "pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    ec2 = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(pricing) as prices, Stubber(ec2) as spots:
        prices.add_response(
            "get_products",
            {
                "FormatVersion": "aws_v1",
                "PriceList": [price_list_item("g4dn.xlarge", "eu-west-1", "0.5870000000")],
            },
            {"ServiceCode": "AmazonEC2", "Filters": ANY, "MaxResults": 100},
        )
        spots.add_response(
            "describe_spot_price_history",
            {
                "SpotPriceHistory": [
                    {
                        "AvailabilityZone": "eu-west-1a",
                        "Timestamp": datetime(2026, 11, 22, tzinfo=UTC),
                        "SpotPrice": "0.31",
                    }
                ]
            },
            {"InstanceTypes": ["g4dn.xlarge"], "ProductDescriptions": ["Linux/UNIX"], "StartTime": ANY},
        )
        prices.add_response(  # g6.xlarge: no product in this region
            "get_products",
            {"FormatVersion": "aws_v1", "PriceList": []},
            {"ServiceCode": "AmazonEC2", "Filters": ANY, "MaxResults": 100},
        )
        prices.add_response(
            "get_products",
            {
                "FormatVersion": "aws_v1",
                "PriceList": [price_list_item("", "eu-west-1", "0.0880000000", unit="GB-Mo")],
            },
            {"ServiceCode": "AmazonEC2", "Filters": ANY, "MaxResults": 100},
        )
        document: dict[str, Any] = refresh(
            ["eu-west-1"], ["g4dn.xlarge", "g6.xlarge"], pricing=pricing, ec2_for=lambda region: ec2
        )
        prices.assert_no_pending_responses()
    assert document["instances"] == {
        "eu-west-1": {"g4dn.xlarge": {"on_demand": 0.587, "spot": 0.31}, "g6.xlarge": None}
    }
    assert document["services"] == {"ebs_gp3_gb_month": {"eu-west-1": 0.088}}
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(document))
    book = load_price_book(str(path))
    assert book.instance("g4dn.xlarge", "eu-west-1", "spot").usd == 0.31
    assert book.offered("g6.xlarge", "eu-west-1") is False
