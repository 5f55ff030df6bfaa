"""The price table with its sources: ``gpu-autostop-tools price-table [--prices FILE] [--region R]``."""

from __future__ import annotations

import argparse

from autostop.pricing import (
    CATALOG_SOURCE,
    PRICES_FILE_ENV,
    READ_ON,
    SPOT_SOURCE,
    PriceFileError,
    load_price_book,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gpu-autostop-tools price-table", description="Show the price table."
    )
    parser.add_argument("--prices", help=f"JSON override file (default: ${PRICES_FILE_ENV})")
    parser.add_argument("--region", action="append", help="limit to these regions (repeatable)")
    args = parser.parse_args(argv)
    try:
        book = load_price_book(args.prices)
    except PriceFileError as exc:
        parser.error(str(exc))
    regions = args.region or sorted(book.instances)
    print(f"Instance prices, USD per hour (read {READ_ON} unless overridden)")
    print(f"{'region':<12} {'type':<14} {'on-demand':>10} {'spot':>8}")
    for region in regions:
        for itype in sorted(book.instances.get(region, {})):
            pair = book.instances[region][itype]
            if pair is None:
                print(f"{region:<12} {itype:<14} {'not offered':>19}")
            else:
                print(f"{region:<12} {itype:<14} {pair[0]:>10.4f} {pair[1]:>8.4f}")
    print(f"\non-demand source: {CATALOG_SOURCE}\nspot source: {SPOT_SOURCE}\n")
    service_region = args.region[0] if args.region else "us-east-1"
    print(f"Other prices ({service_region})")
    for name in book.services:
        price = book.service(name, service_region)
        print(f"  {name:<34} ${price.usd:<12.8g} per {price.unit:<16} {price.source}")
    overridden = sorted({v for v in book.overridden.values()})
    if overridden:
        print("\n" + "; ".join(overridden))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
