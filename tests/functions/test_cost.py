"""The cost model: the monthly bill's arithmetic (the command line is tested in tests/tools/)."""

from __future__ import annotations

import pytest

from autostop import cost
from autostop.cost import Assumptions, fixed_monthly_usd, monthly_bill, running_extras_per_hour
from autostop.pricing import PriceBook

BOOK = PriceBook()


def test_the_bill_is_split_into_the_five_items_and_adds_up() -> None:
    bill = monthly_bill(BOOK, "g4dn.xlarge", "us-east-1", 4)
    assert list(bill.items) == ["compute", "storage", "public_ip", "monitoring", "control_plane"]
    assert bill.total == pytest.approx(sum(bill.items.values()), abs=0.005)
    assert bill.running_hours == pytest.approx(4 * 730 / 24)
    assert bill.items["compute"] == pytest.approx(4 * 730 / 24 * 0.526, abs=0.01)
    assert bill.items["storage"] == 8.0  # 100 GB x $0.08, billed stopped or not
    assert bill.items["public_ip"] == pytest.approx(bill.running_hours * 0.005, abs=0.01)


def test_24_7_is_730_hours() -> None:
    bill = monthly_bill(BOOK, "g4dn.xlarge", "us-east-1", 24)
    assert bill.running_hours == 730
    assert bill.items["compute"] == pytest.approx(730 * 0.526, abs=0.01)
    assert bill.items["public_ip"] == 3.65


def test_days_limit_the_running_hours() -> None:
    assert monthly_bill(BOOK, "g4dn.xlarge", "us-east-1", 8, days=10).running_hours == 80
    assert monthly_bill(BOOK, "g4dn.xlarge", "us-east-1", 24, days=31).running_hours == 730


def test_spot_region_and_volume_change_what_they_should() -> None:
    on_demand = monthly_bill(BOOK, "g5.xlarge", "eu-north-1", 2)
    spot = monthly_bill(BOOK, "g5.xlarge", "eu-north-1", 2, market="spot")
    assert spot.items["compute"] < on_demand.items["compute"]
    assert spot.items["storage"] == on_demand.items["storage"] == pytest.approx(8.36)
    small = monthly_bill(BOOK, "g5.xlarge", "eu-north-1", 2, assumptions=Assumptions(volume_gb=50))
    assert small.items["storage"] == pytest.approx(4.18)


def test_an_elastic_ip_is_billed_all_month_and_no_ip_not_at_all() -> None:
    eip = monthly_bill(BOOK, "g4dn.xlarge", "us-east-1", 1, assumptions=Assumptions(public_ip="eip"))
    none = monthly_bill(BOOK, "g4dn.xlarge", "us-east-1", 1, assumptions=Assumptions(public_ip="none"))
    assert eip.items["public_ip"] == 3.65
    assert none.items["public_ip"] == 0


def test_detailed_monitoring_and_free_tier() -> None:
    base = monthly_bill(BOOK, "g4dn.xlarge", "us-east-1", 24)
    detailed = monthly_bill(
        BOOK, "g4dn.xlarge", "us-east-1", 24, assumptions=Assumptions(detailed_monitoring=True)
    )
    assert detailed.items["monitoring"] - base.items["monitoring"] == pytest.approx(7 * 0.30, abs=0.01)
    free = monthly_bill(BOOK, "g4dn.xlarge", "us-east-1", 24, assumptions=Assumptions(free_tier=True))
    assert free.items["monitoring"] == pytest.approx(0.50, abs=0.01)  # only the composite alarm is left


def test_fixed_and_per_hour_parts_rebuild_the_bill() -> None:
    """The hard cap's estimate uses these two; they must agree with the bill at any hours."""
    fixed = fixed_monthly_usd(BOOK, "us-east-1")
    extras = running_extras_per_hour(BOOK, "us-east-1")
    for hours_per_day in (0, 2, 8, 24):
        bill = monthly_bill(BOOK, "g4dn.xlarge", "us-east-1", hours_per_day)
        rebuilt = fixed + bill.running_hours * (0.526 + extras)
        assert bill.total == pytest.approx(rebuilt, abs=0.03)
    assert 0.005 < extras < 0.01  # public IPv4 plus metrics and calls
    assert 12 < fixed < 15  # 100 GB gp3, alarms, dashboard, KMS key, re-checks


def test_the_stopped_month_before_and_after_cloudwatchs_free_allowance() -> None:
    before, after = cost.stopped_month_usd(BOOK, "us-east-1")
    assert before == round(fixed_monthly_usd(BOOK, "us-east-1"), 2)
    # 10 metric alarms x $0.10 and 1 dashboard x $3 are free; the composite alarm ($0.50), the disk
    # ($8), the KMS key ($1) and the weekly report's Cost Explorer requests (3 a week x $0.01, $0.13)
    # are not; Lambda's re-checks (8,760 calls) are a few cents.
    assert before - after == pytest.approx(1.00 + 3.00, abs=0.05)
    assert after == pytest.approx(8.00 + 0.50 + 1.00 + 3 * 52 / 12 * 0.01, abs=0.05)
    # The allowance is 10 alarm metrics and 3 dashboards, not everything.
    more = Assumptions(metric_alarms=14, dashboards=5)
    more_before, more_after = cost.stopped_month_usd(BOOK, "us-east-1", more)
    assert more_before - before == pytest.approx(4 * 0.10 + 4 * 3.00, abs=0.01)
    assert more_after - after == pytest.approx(4 * 0.10 + 2 * 3.00, abs=0.01)


@pytest.mark.parametrize(
    ("hours", "days", "message"),
    [(25, 30, "hours per day"), (-1, 30, "hours per day"), (4, 0, "days"), (4, 32, "days")],
)
def test_bad_inputs_are_refused(hours: float, days: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        monthly_bill(BOOK, "g4dn.xlarge", "us-east-1", hours, days=days)
