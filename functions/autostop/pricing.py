"""Prices for cost estimates: GPU instance hours and the services around them.

Every figure carries its source and the date it was read. Where a figure could
not be checked against a primary AWS source it says "approximate" in its source.
Prices are USD, Linux, shared tenancy, before tax and before any free tier.

Overrides: a JSON file (``--prices FILE`` on the command-line tools, or the
``AUTOSTOP_PRICES_FILE`` environment variable) replaces any figure::

    {"instances": {"us-east-1": {"g4dn.xlarge": {"on_demand": 0.50, "spot": 0.19}}},
     "services": {"ebs_gp3_gb_month": {"eu-north-1": 0.0836}, "kms_key_month": 0.0}}

A service value is a number (every region) or a map region -> number. ``make prices``
writes such a file from the AWS Price List API (``gpu-autostop-tools prices``); nothing
at run time needs it. In the Lambda functions ``HOURLY_PRICE_USD`` overrides the
instance price.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PRICES_FILE_ENV = "AUTOSTOP_PRICES_FILE"
MARKETS = ("on-demand", "spot")
#: The regions the table covers; an override file may add others.
REGIONS = ("eu-north-1", "eu-west-1", "us-east-1", "us-west-2")
INSTANCE_TYPES = (
    "g4dn.xlarge",
    "g4dn.2xlarge",
    "g5.xlarge",
    "g5.2xlarge",
    "g6.xlarge",
    "g6.2xlarge",
    "g6e.xlarge",
)

READ_ON = "2026-11-23"
CATALOG_SOURCE = (
    "AWS Price List on-demand Linux rate as republished in the SkyPilot catalog "
    "(github.com/skypilot-org/skypilot-catalog, catalogs/v8/aws/vms.csv @00148f2)"
)
SPOT_SOURCE = (
    "approximate: spot snapshot in the SkyPilot catalog (catalogs/v8/aws/vms.csv @00148f2), "
    "median over the region's availability zones, local zones excluded; spot prices move daily"
)
_NOT_OFFERED = (
    "not offered in this region (absent from the SkyPilot catalog @00148f2; "
    "check with aws ec2 describe-instance-type-offerings)"
)

# (on-demand, typical spot) USD per hour; None: the type is not offered in the region.
_INSTANCE_TABLE: dict[str, dict[str, tuple[float, float] | None]] = {
    "eu-north-1": {
        "g4dn.xlarge": (0.558, 0.184),
        "g4dn.2xlarge": (0.798, 0.258),
        "g5.xlarge": (1.067, 0.428),
        "g5.2xlarge": (1.28549, 0.487),
        "g6.xlarge": (0.8536, 0.302),
        "g6.2xlarge": (1.03688, 0.404),
        "g6e.xlarge": (1.974, 0.835),
    },
    "eu-west-1": {
        "g4dn.xlarge": (0.587, 0.317),
        "g4dn.2xlarge": (0.838, 0.397),
        "g5.xlarge": (1.123, 0.575),
        "g5.2xlarge": (1.35296, 0.619),
        "g6.xlarge": None,
        "g6.2xlarge": None,
        "g6e.xlarge": None,
    },
    "us-east-1": {
        "g4dn.xlarge": (0.526, 0.204),
        "g4dn.2xlarge": (0.752, 0.315),
        "g5.xlarge": (1.006, 0.436),
        "g5.2xlarge": (1.212, 0.504),
        "g6.xlarge": (0.8048, 0.382),
        "g6.2xlarge": (0.9776, 0.476),
        "g6e.xlarge": (1.861, 1.005),
    },
    "us-west-2": {
        "g4dn.xlarge": (0.526, 0.246),
        "g4dn.2xlarge": (0.752, 0.315),
        "g5.xlarge": (1.006, 0.486),
        "g5.2xlarge": (1.212, 0.412),
        "g6.xlarge": (0.8048, 0.439),
        "g6.2xlarge": (0.9776, 0.528),
        "g6e.xlarge": (1.861, 0.821),
    },
}

_ALL = "*"
_CW = (
    "AWS CloudWatch pricing, us-east-1 rate as quoted by public guides (c3x.dev, signoz.io, 2026); "
    "approximate in other regions; before the always-free allowance"
)
# name -> (unit, {region or "*": usd}, source)
_SERVICE_TABLE: dict[str, tuple[str, dict[str, float], str]] = {
    "ebs_gp3_gb_month": (
        "GB-month",
        {"us-east-1": 0.08, "us-west-2": 0.08, "eu-west-1": 0.088, "eu-north-1": 0.0836},
        "AWS EBS pricing, gp3 storage (baseline 3,000 IOPS / 125 MB/s included); "
        "regional rates as listed in several public price tables",
    ),
    "public_ipv4_hour": (
        "hour",
        {_ALL: 0.005},
        "AWS VPC pricing: every public IPv4 address, in use or idle (Elastic IP too), since 2024-02-01",
    ),
    "cloudwatch_metric_month": (
        "metric-month",
        {_ALL: 0.30},
        _CW + ", custom metrics, first 10,000; billed pro rata by the hour a metric is sent",
    ),
    "cloudwatch_alarm_month": (
        "alarm-month",
        {_ALL: 0.10},
        _CW + ", standard-resolution metric alarm",
    ),
    "cloudwatch_composite_alarm_month": (
        "alarm-month",
        {_ALL: 0.50},
        _CW + ", composite alarm",
    ),
    "cloudwatch_dashboard_month": (
        "dashboard-month",
        {_ALL: 3.00},
        _CW + ", dashboard (the first 3 are free)",
    ),
    "cloudwatch_logs_ingest_gb": (
        "GB",
        {_ALL: 0.50},
        "approximate: CloudWatch Logs standard ingestion, us-east-1 rate (EU regions are a few cents higher)",
    ),
    "lambda_request": (
        "request",
        {_ALL: 0.20 / 1_000_000},
        "AWS Lambda pricing: $0.20 per 1M requests (us-east-1; approximate elsewhere)",
    ),
    "lambda_gb_second": (
        "GB-second",
        {_ALL: 0.0000166667},
        "AWS Lambda pricing: x86 duration, first tier (us-east-1; approximate elsewhere)",
    ),
    "kms_key_month": (
        "key-month",
        {_ALL: 1.00},
        "AWS KMS pricing: customer managed key (the stack's one key for topic, queue, logs)",
    ),
    "cost_explorer_request": (
        "request",
        {_ALL: 0.01},
        "AWS Cost Explorer pricing: $0.01 per API request (the weekly report makes two)",
    ),
    "ssm_standard_parameter_month": (
        "parameter-month",
        {_ALL: 0.0},
        "AWS Systems Manager Parameter Store: standard parameters and standard throughput are free",
    ),
    "sns_email_notification": (
        "notification",
        {_ALL: 0.0},
        "approximate: Amazon SNS email, first 1,000 a month free; this stack sends a few dozen",
    ),
    "budgets_month": (
        "budget-month",
        {_ALL: 0.0},
        "approximate: AWS Budgets, the stack's two cost budgets without actions are not charged",
    ),
}


class PriceUnknown(LookupError):
    """No price for this instance type, market and region (or the type is not offered there)."""


class PriceFileError(ValueError):
    """The override file is unreadable or malformed; the message names the path and the key."""


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str
    date: str = READ_ON

    @property
    def approximate(self) -> bool:
        return "approximate" in self.source


@dataclass
class PriceBook:
    """The built-in table plus any overrides."""

    instances: dict[str, dict[str, tuple[float, float] | None]] = field(
        default_factory=lambda: {r: dict(t) for r, t in _INSTANCE_TABLE.items()}
    )
    services: dict[str, tuple[str, dict[str, float], str]] = field(
        default_factory=lambda: {k: (u, dict(v), s) for k, (u, v, s) in _SERVICE_TABLE.items()}
    )
    #: (region, type, market) and (service, region) keys replaced by the override file.
    overridden: dict[tuple[str, ...], str] = field(default_factory=dict)

    def offered(self, instance_type: str, region: str) -> bool | None:
        """True/False when the table knows; None when the region or type is not in it."""
        row = self.instances.get(region)
        if row is None or instance_type not in row:
            return None
        return row[instance_type] is not None

    def instance(self, instance_type: str, region: str, market: str = "on-demand") -> Price:
        if market not in MARKETS:
            raise PriceUnknown(f"market must be one of {', '.join(MARKETS)}; got {market!r}")
        row = self.instances.get(region)
        if row is None or instance_type not in row:
            raise PriceUnknown(
                f"no price for {instance_type} in {region}; give one with --prices FILE "
                f"(or HOURLY_PRICE_USD in the functions)"
            )
        pair = row[instance_type]
        if pair is None:
            raise PriceUnknown(f"{instance_type} is {_NOT_OFFERED.replace('this region', region)}")
        usd = pair[0] if market == "on-demand" else pair[1]
        origin = self.overridden.get((region, instance_type, market))
        source = origin or (CATALOG_SOURCE if market == "on-demand" else SPOT_SOURCE)
        return Price(usd, "hour", source)

    def service(self, name: str, region: str) -> Price:
        try:
            unit, rates, source = self.services[name]
        except KeyError:
            raise PriceUnknown(f"unknown price {name!r}") from None
        usd = rates.get(region, rates.get(_ALL))
        if usd is None:
            # A regional figure exists elsewhere: use the highest as a cautious stand-in.
            usd = max(rates.values())
            source = f"approximate: no {region} rate, highest known rate used; " + source
        origin = self.overridden.get((name, region)) or self.overridden.get((name, _ALL))
        return Price(usd, unit, origin or source)

    def with_overrides(self, data: Mapping[str, Any], origin: str) -> PriceBook:
        """A copy with the figures of an override document applied (validated, errors name the key)."""
        book = PriceBook(
            instances={r: dict(t) for r, t in self.instances.items()},
            services={k: (u, dict(v), s) for k, (u, v, s) in self.services.items()},
            overridden=dict(self.overridden),
        )
        unknown = sorted(set(data) - {"instances", "services", "_comment", "generated"})
        if unknown:
            raise PriceFileError(f"{origin}: unknown top-level key(s) {unknown}; use 'instances', 'services'")
        label = f"override from {origin}"
        for region, types in _mapping(data.get("instances", {}), f"{origin}: instances").items():
            for itype, entry in _mapping(types, f"{origin}: instances.{region}").items():
                where = f"{origin}: instances.{region}.{itype}"
                current = book.instances.setdefault(region, {}).get(itype)
                if entry is None:
                    book.instances[region][itype] = None
                    continue
                values = _mapping(entry, where)
                bad = sorted(set(values) - {"on_demand", "spot"})
                if bad:
                    raise PriceFileError(f"{where}: unknown key(s) {bad}; use 'on_demand' and 'spot'")
                on_demand = _usd(
                    values.get("on_demand", current[0] if current else None), where + ".on_demand"
                )
                spot = _usd(values.get("spot", current[1] if current else on_demand), where + ".spot")
                book.instances[region][itype] = (on_demand, spot)
                for key, market in (("on_demand", "on-demand"), ("spot", "spot")):
                    if key in values:
                        book.overridden[(region, itype, market)] = label
        for name, value in _mapping(data.get("services", {}), f"{origin}: services").items():
            if name not in book.services:
                raise PriceFileError(
                    f"{origin}: services.{name} is not a known price ({', '.join(book.services)})"
                )
            rates = book.services[name][1]
            if isinstance(value, Mapping):
                for region, usd in value.items():
                    rates[str(region)] = _usd(usd, f"{origin}: services.{name}.{region}")
                    book.overridden[(name, str(region))] = label
            else:
                rates.clear()
                rates[_ALL] = _usd(value, f"{origin}: services.{name}")
                book.overridden[(name, _ALL)] = label
        return book


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PriceFileError(f"{where} must be an object")
    return value


def _usd(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise PriceFileError(f"{where} must be a non-negative number of USD; got {value!r}")
    return float(value)


def load_price_book(path: str | None = None, env: Mapping[str, str] | None = None) -> PriceBook:
    """The built-in table, with the override file applied when one is given (or set in the env)."""
    env = os.environ if env is None else env
    path = path or env.get(PRICES_FILE_ENV) or None
    book = PriceBook()
    if not path:
        return book
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise PriceFileError(f"cannot read price file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise PriceFileError(f"price file {path} is not valid JSON: {exc}") from None
    return book.with_overrides(_mapping(data, path), path)


_DEFAULT: PriceBook | None = None


def default_book() -> PriceBook:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = PriceBook()
    return _DEFAULT


def hourly_price(
    instance_type: str, region: str, override: float | None = None, market: str = "on-demand"
) -> float | None:
    """Price per hour for ``instance_type`` in ``region``; None when unknown or not offered there."""
    if override is not None:
        return override
    try:
        return default_book().instance(instance_type, region, market).usd
    except PriceUnknown:
        return None


def cautious_hourly_price(
    instance_type: str, region: str, override: float | None = None, market: str = "on-demand"
) -> float:
    """Like ``hourly_price`` but never unknown: the type's highest price elsewhere, else the table's."""
    price = hourly_price(instance_type, region, override, market)
    if price is not None:
        return price
    book = default_book()
    index = 0 if market == "on-demand" else 1
    same_type = [pair[index] for row in book.instances.values() if (pair := row.get(instance_type))]
    every = [pair[index] for row in book.instances.values() for pair in row.values() if pair]
    return max(same_type or every)
