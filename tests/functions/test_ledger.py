"""The usage ledger: sessions, starts and images by month and day; idempotent; forgiving; small."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from autostop import ledger
from autostop.ledger import Ledger, month_fraction_elapsed

from .conftest import Env

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_a_session_adds_time_cost_start_and_images() -> None:
    book = Ledger.empty(NOW)
    launch = NOW - timedelta(hours=2)
    book.record_start(launch, launch, "g4dn.xlarge", 0.5)
    assert book.current.starts == 1
    assert book.open_launch() == launch
    assert book.record_stop(NOW, launch, "g4dn.xlarge", 0.5, images=12)
    assert book.current.seconds == 7200
    assert book.current.cost_usd == 1.0
    assert book.current.images == 12
    assert book.open is None
    assert book.days["2026-11-22"] == [7200.0, 1.0, 12.0]


def test_closing_twice_counts_once() -> None:
    book = Ledger.empty(NOW)
    launch = NOW - timedelta(hours=1)
    book.record_start(launch, launch, "g4dn.xlarge", 0.5)
    assert book.record_stop(NOW, launch, "g4dn.xlarge", 0.5, images=3)
    assert not book.record_stop(NOW + timedelta(minutes=5), launch, "g4dn.xlarge", 0.5, images=3)
    assert book.current.seconds == 3600
    assert book.current.images == 3


def test_a_boot_this_project_did_not_start_is_counted_when_closed() -> None:
    book = Ledger.empty(NOW)
    launch = NOW - timedelta(minutes=30)
    assert book.record_stop(NOW, launch, "g4dn.xlarge", 0.6)
    assert book.current.starts == 1
    assert book.current.cost_usd == 0.3


def test_the_price_of_the_start_is_kept_for_the_session() -> None:
    book = Ledger.empty(NOW)
    launch = NOW - timedelta(hours=1)
    book.record_start(launch, launch, "g5.xlarge", 1.0)
    book.record_stop(NOW, launch, "g5.xlarge", 0.1)
    assert book.current.cost_usd == 1.0


def test_a_session_across_midnight_and_month_end_is_split() -> None:
    book = Ledger.empty(datetime(2026, 10, 31, 20, tzinfo=UTC))
    launch = datetime(2026, 10, 31, 22, tzinfo=UTC)
    book.record_start(launch, launch, "g4dn.xlarge", 1.0)
    end = datetime(2026, 11, 1, 1, tzinfo=UTC)
    book.record_stop(end, launch, "g4dn.xlarge", 1.0, images=4)
    assert book.current.month == "2026-11"
    assert book.current.seconds == 3600
    assert book.current.images == 4
    assert book.prev is not None
    assert book.prev.month == "2026-10"
    assert book.prev.seconds == 7200
    assert book.prev.starts == 1
    assert book.prev.cost_usd == 2.0
    assert book.days["2026-10-31"][0] == 7200
    assert book.days["2026-11-01"][0] == 3600


def test_a_new_month_starts_from_zero_and_keeps_the_last() -> None:
    book = Ledger.empty(NOW)
    book.record_stop(NOW, NOW - timedelta(hours=1), "g4dn.xlarge", 1.0)
    book.roll(datetime(2026, 12, 2, tzinfo=UTC))
    assert book.current.month == "2026-12"
    assert book.current.seconds == 0
    assert book.prev is not None
    assert book.prev.seconds == 3600


def test_only_the_last_eight_days_are_kept_and_the_week_is_seven_full_days() -> None:
    book = Ledger.empty(NOW)
    for days_ago in range(12):
        launch = NOW - timedelta(days=days_ago, hours=1)
        book.record_stop(launch + timedelta(hours=1), launch, "g4dn.xlarge", 1.0, images=1)
    book.roll(NOW)
    assert len(book.days) == 8
    seconds, starts, images = book.last_days(NOW)
    assert (seconds, starts, images) == (7 * 3600, 7, 7)  # yesterday back to 7 days ago, not today


def test_round_trip_and_size() -> None:
    book = Ledger.empty(NOW)
    for n in range(40):
        launch = NOW - timedelta(hours=n * 4 + 2)
        book.record_start(launch, launch, "g4dn.xlarge", 0.526)
        book.record_stop(launch + timedelta(hours=1), launch, "g4dn.xlarge", 0.526, images=9)
    text = book.dumps()
    assert len(text) < 1500  # far below the 4 KB of a standard SSM parameter
    again = Ledger.parse(text, NOW)
    assert (again.current.seconds, again.current.starts, again.current.images) == (144_000, 40, 360)
    assert again.current.cost_usd == round(book.current.cost_usd, 4) == 21.04
    assert again.days == {d: [round(r[0], 1), r[1], r[2]] for d, r in book.days.items()}
    assert again.last_closed_launch == book.last_closed_launch


def test_a_malformed_document_starts_afresh() -> None:
    for text in (None, "", "not json", "[]", json.dumps({"month": 5}), json.dumps({"v": 1})):
        book = Ledger.parse(text, NOW)
        assert book.current.month == "2026-11"
        assert book.current.seconds == 0
    odd = Ledger.parse(
        json.dumps({"month": "2026-11", "seconds": -5, "starts": "x", "days": {"a": [1]}}), NOW
    )
    assert odd.current.seconds == 0
    assert odd.current.starts == 0
    assert odd.days == {}


def test_month_fraction() -> None:
    assert month_fraction_elapsed(datetime(2026, 11, 1, tzinfo=UTC)) == 0
    assert month_fraction_elapsed(datetime(2026, 11, 16, tzinfo=UTC)) == 0.5
    assert round(month_fraction_elapsed(datetime(2026, 12, 31, 12, tzinfo=UTC)), 3) == 0.984


def test_read_and_write_through_ssm(env: Env) -> None:
    parameter = "/gpu-autostop/ledger"
    assert ledger.read(parameter, NOW).current.seconds == 0  # absent: empty
    book = ledger.read(parameter, NOW)
    book.record_stop(NOW, NOW - timedelta(hours=1), "g4dn.xlarge", 0.5, images=2)
    ledger.write(parameter, book)
    again = ledger.read(parameter, NOW)
    assert again.current.seconds == 3600
    assert again.current.images == 2
    stored = json.loads(env.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"])
    assert stored["v"] == 1
    assert stored["month"] == "2026-11"
