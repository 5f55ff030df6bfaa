"""The monthly bill before deploying: ``gpu-autostop-tools cost`` (and ``make cost``).

    gpu-autostop-tools cost --instance-type g4dn.xlarge --region us-east-1 --hours-per-day 4
    gpu-autostop-tools cost --instance-type g5.xlarge --region eu-north-1 --hours-per-day 2 --json
    gpu-autostop-tools cost --table                 # the 24/7 vs 8/4/2 hours a day table

The model itself (``autostop.cost``) is the runtime's: the hard cap reads its fixed costs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from autostop.cost import (
    CATEGORIES,
    DAYS_PER_MONTH,
    TABLE_HOURS,
    Assumptions,
    Estimate,
    monthly_bill,
    stopped_month_usd,
)
from autostop.pricing import (
    INSTANCE_TYPES,
    MARKETS,
    REGIONS,
    PriceBook,
    PriceFileError,
    PriceUnknown,
    load_price_book,
)


def render(estimate: Estimate, hours_per_day: float, days: float, stopped: tuple[float, float]) -> str:
    e = estimate
    out = [
        f"gpu-autostop monthly estimate: {e.instance_type} {e.market} in {e.region}, "
        f"{hours_per_day:g} h/day x {days:.1f} days = {e.running_hours:.1f} running hours",
        "",
    ]
    for name in CATEGORIES:
        out.append(f"  {name:<14} ${e.items[name]:>8.2f}")
        for line in e.lines:
            if line.category == name and (line.usd or name != "control_plane" or "no charge" in line.detail):
                out.append(f"  {'':<14} {'':>9}  {line.detail} = ${line.usd:.2f}")
    out += [
        f"  {'total':<14} ${e.total:>8.2f}",
        "",
        f"Stopped month (0 running hours): ${stopped[0]:.2f} before the free tier, ${stopped[1]:.2f} with "
        "the always-free allowances (CloudWatch: 10 alarm metrics, 3 dashboards; if nothing else uses them).",
        f"Instance price: {e.hourly.source} (read {e.hourly.date}).",
        "Other prices and their sources: gpu-autostop-tools price-table. Override any with --prices FILE.",
        "Before tax and free tier; a 730-hour month.",
    ]
    return "\n".join(out)


def table(book: PriceBook, region: str, market: str, assumptions: Assumptions, breakdown_type: str) -> str:
    """Markdown: every instance type at 24/7 and 8/4/2 hours a day, then one type's breakdown."""
    heads = ["24/7" if h == 24 else f"{h:g} h/day" for h in TABLE_HOURS]
    ip = {"auto": "public IPv4 while running", "eip": "Elastic IP", "none": "no public IP"}[
        assumptions.public_ip
    ]
    out = [
        f"Monthly bill in USD, {region}, {market}, {assumptions.volume_gb:g} GB gp3, {ip} "
        f"(`gpu-autostop-tools cost --table --region {region}`)",
        "",
        "| instance | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(heads),
    ]
    for itype in INSTANCE_TYPES:
        cells = []
        for hours in TABLE_HOURS:
            try:
                bill = monthly_bill(book, itype, region, hours, market=market, assumptions=assumptions)
                cells.append(f"{bill.total:,.2f}")
            except PriceUnknown:
                cells.append("n/a")
        if cells[0] == "n/a" and book.offered(itype, region) is False:
            cells = ["not offered"] * len(cells)
        out.append(f"| {itype} | " + " | ".join(cells) + " |")
    try:
        bills = [
            monthly_bill(book, breakdown_type, region, h, market=market, assumptions=assumptions)
            for h in TABLE_HOURS
        ]
    except PriceUnknown as exc:
        return "\n".join([*out, "", f"(no breakdown: {exc})"])
    out += [
        "",
        f"{breakdown_type} in detail:",
        "",
        "| item | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(heads),
    ]
    for name in (*CATEGORIES, "total"):
        values = [b.total if name == "total" else b.items[name] for b in bills]
        label = f"**{name}**" if name == "total" else name
        out.append(f"| {label} | " + " | ".join(f"{v:,.2f}" for v in values) + " |")
    out += [
        "",
        "Prices read 2026-11-23 (on-demand: AWS Price List via the SkyPilot catalog; sources:",
        "`gpu-autostop-tools price-table`); a 730-hour month, before tax and free tier.",
    ]
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpu-autostop-tools cost",
        description="Estimate the monthly AWS bill of gpu-autostop before deploying.",
    )
    parser.add_argument("--instance-type", default="g4dn.xlarge", help="EC2 type (default g4dn.xlarge)")
    parser.add_argument(
        "--region", default="us-east-1", help=f"AWS region; the table knows {', '.join(REGIONS)}"
    )
    parser.add_argument(
        "--hours-per-day", type=float, help="running hours a day (0-24); required without --table"
    )
    parser.add_argument(
        "--days", type=float, default=DAYS_PER_MONTH, help="days of use in the month (default 30.4)"
    )
    parser.add_argument("--market", choices=MARKETS, default="on-demand")
    parser.add_argument(
        "--volume-gb", type=float, default=Assumptions.volume_gb, help="gp3 root volume (100)"
    )
    ip = parser.add_mutually_exclusive_group()
    ip.add_argument("--eip", action="store_true", help="an Elastic IP (billed all month)")
    ip.add_argument("--no-public-ip", action="store_true", help="no public IPv4")
    parser.add_argument("--detailed-monitoring", action="store_true", help="EC2 1-minute metrics")
    parser.add_argument("--free-tier", action="store_true", help="subtract the always-free allowances")
    parser.add_argument("--prices", help="JSON file overriding any price (default: $AUTOSTOP_PRICES_FILE)")
    parser.add_argument("--json", action="store_true", help="print {total_usd, items}")
    parser.add_argument("--table", action="store_true", help="print the README table (markdown)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        book = load_price_book(args.prices)
    except PriceFileError as exc:
        parser.error(str(exc))
    if args.volume_gb < 0:
        parser.error("--volume-gb must not be negative")
    assumptions = replace(
        Assumptions(),
        volume_gb=args.volume_gb,
        public_ip="eip" if args.eip else "none" if args.no_public_ip else "auto",
        detailed_monitoring=args.detailed_monitoring,
        free_tier=args.free_tier,
    )
    if args.table:
        print(table(book, args.region, args.market, assumptions, args.instance_type))
        return 0
    if args.hours_per_day is None:
        parser.error("--hours-per-day is required (or use --table)")
    try:
        estimate = monthly_bill(
            book,
            args.instance_type,
            args.region,
            args.hours_per_day,
            days=args.days,
            market=args.market,
            assumptions=assumptions,
        )
    except (PriceUnknown, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stopped = stopped_month_usd(book, args.region, assumptions)
    if args.json:
        data = estimate.as_json()
        data["stopped_month_usd"] = {"before_free_tier": stopped[0], "free_tier": stopped[1]}
        print(json.dumps(data, sort_keys=True))
    else:
        print(render(estimate, args.hours_per_day, args.days, stopped))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
