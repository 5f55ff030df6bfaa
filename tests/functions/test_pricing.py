"""The price table: complete for the types and regions promised, sourced, dated, overridable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autostop import pricing
from autostop.pricing import (
    INSTANCE_TYPES,
    REGIONS,
    PriceBook,
    PriceFileError,
    PriceUnknown,
    cautious_hourly_price,
    hourly_price,
    load_price_book,
)

NOT_OFFERED = {("eu-west-1", "g6.xlarge"), ("eu-west-1", "g6.2xlarge"), ("eu-west-1", "g6e.xlarge")}


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("instance_type", INSTANCE_TYPES)
def test_every_type_and_region_has_a_price_or_says_not_offered(region: str, instance_type: str) -> None:
    book = PriceBook()
    if (region, instance_type) in NOT_OFFERED:
        assert book.offered(instance_type, region) is False
        with pytest.raises(PriceUnknown, match="not offered in eu-west-1"):
            book.instance(instance_type, region)
        return
    on_demand = book.instance(instance_type, region, "on-demand")
    spot = book.instance(instance_type, region, "spot")
    assert 0.3 < on_demand.usd < 3.0
    assert 0 < spot.usd < on_demand.usd, "typical spot is below on-demand"
    assert on_demand.date == spot.date == pricing.READ_ON
    assert "Price List" in on_demand.source
    assert spot.approximate, "spot prices move: the source must say approximate"


def test_known_list_prices() -> None:
    book = PriceBook()
    assert book.instance("g4dn.xlarge", "us-east-1").usd == 0.526
    assert book.instance("g5.xlarge", "us-west-2").usd == 1.006
    assert book.instance("g4dn.xlarge", "eu-north-1").usd == 0.558


@pytest.mark.parametrize(
    "name",
    [
        "ebs_gp3_gb_month",
        "public_ipv4_hour",
        "cloudwatch_metric_month",
        "cloudwatch_alarm_month",
        "cloudwatch_composite_alarm_month",
        "cloudwatch_dashboard_month",
        "lambda_request",
        "lambda_gb_second",
        "kms_key_month",
        "cost_explorer_request",
        "ssm_standard_parameter_month",
    ],
)
@pytest.mark.parametrize("region", REGIONS)
def test_service_prices_carry_unit_source_and_date(name: str, region: str) -> None:
    price = PriceBook().service(name, region)
    assert price.usd >= 0
    assert price.unit
    assert len(price.source) > 20
    assert price.date == pricing.READ_ON


def test_regional_storage_prices() -> None:
    book = PriceBook()
    assert book.service("ebs_gp3_gb_month", "us-east-1").usd == 0.08
    assert book.service("ebs_gp3_gb_month", "eu-west-1").usd == 0.088
    assert book.service("public_ipv4_hour", "eu-north-1").usd == 0.005


def test_a_region_outside_the_table_gets_a_cautious_approximate_storage_price() -> None:
    price = PriceBook().service("ebs_gp3_gb_month", "ap-south-1")
    assert price.usd == 0.088
    assert price.approximate


def test_hourly_price_keeps_its_contract() -> None:
    assert hourly_price("g4dn.xlarge", "us-east-1") == 0.526
    assert hourly_price("g4dn.xlarge", "us-east-1", 0.9) == 0.9
    assert hourly_price("g4dn.xlarge", "us-east-1", market="spot") == 0.204
    assert hourly_price("p5.48xlarge", "us-east-1") is None
    assert hourly_price("g6.xlarge", "eu-west-1") is None


def test_cautious_price_never_unknown() -> None:
    assert cautious_hourly_price("g6.xlarge", "eu-west-1") == 0.8536  # the type's highest elsewhere
    assert cautious_hourly_price("p5.48xlarge", "us-east-1") == 1.974  # the table's highest
    assert cautious_hourly_price("g4dn.xlarge", "us-east-1", 0.1) == 0.1


def write(tmp_path: Path, data: object) -> str:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_override_file_replaces_instance_and_service_prices(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "instances": {
                "us-east-1": {"g4dn.xlarge": {"on_demand": 0.5}},
                "eu-central-1": {"g5.xlarge": {"on_demand": 1.2, "spot": 0.5}},
                "eu-north-1": {"g6e.xlarge": None},
            },
            "services": {"ebs_gp3_gb_month": {"us-east-1": 0.07}, "kms_key_month": 0},
        },
    )
    book = load_price_book(path)
    price = book.instance("g4dn.xlarge", "us-east-1")
    assert price.usd == 0.5
    assert price.source == f"override from {path}"
    assert book.instance("g4dn.xlarge", "us-east-1", "spot").usd == 0.204  # untouched
    assert book.instance("g5.xlarge", "eu-central-1", "spot").usd == 0.5  # a new region
    assert book.offered("g6e.xlarge", "eu-north-1") is False
    assert book.service("ebs_gp3_gb_month", "us-east-1").usd == 0.07
    assert book.service("ebs_gp3_gb_month", "eu-west-1").usd == 0.088
    assert book.service("kms_key_month", "eu-west-1").usd == 0.0
    assert "override" in book.service("kms_key_month", "eu-west-1").source


def test_override_file_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, {"services": {"public_ipv4_hour": 0.004}})
    book = load_price_book(None, env={pricing.PRICES_FILE_ENV: path})
    assert book.service("public_ipv4_hour", "us-east-1").usd == 0.004


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"instance": {}}, "unknown top-level key"),
        (
            {"instances": {"us-east-1": {"g4dn.xlarge": {"on_demand": -1}}}},
            r"instances.us-east-1.g4dn.xlarge.on_demand",
        ),
        ({"instances": {"us-east-1": {"g4dn.xlarge": {"ondemand": 1}}}}, "unknown key"),
        ({"instances": {"us-east-1": {"g4dn.xlarge": {"on_demand": "0.5"}}}}, "non-negative number"),
        ({"services": {"ebs_gp2": 0.1}}, "services.ebs_gp2 is not a known price"),
        ({"services": {"kms_key_month": True}}, "services.kms_key_month"),
        ([1, 2], "must be an object"),
    ],
)
def test_bad_override_files_are_named(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(PriceFileError, match=message):
        load_price_book(write(tmp_path, data))


def test_unreadable_override_files(tmp_path: Path) -> None:
    with pytest.raises(PriceFileError, match="cannot read price file"):
        load_price_book(str(tmp_path / "absent.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PriceFileError, match="not valid JSON"):
        load_price_book(str(bad))
