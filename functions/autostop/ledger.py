"""The usage ledger: running time, starts, images and compute cost, kept in one SSM parameter.

The weekly report reads it for the project's own figures and the hard cap for its
month-to-date estimate. It is a small JSON document (well under the 4 KB of a
standard parameter)::

    {"v": 1, "month": "2026-11", "seconds": 113040.0, "starts": 12, "images": 412,
     "cost_usd": 16.52, "prev": {"month": "2026-10", "seconds": ..., ...},
     "days": {"2026-11-22": [3600.0, 2, 40], ...},          # the last 8 UTC days
     "open": {"launch_time": "2026-11-22T08:00:00Z", "instance_type": "g4dn.xlarge", "price": 0.526},
     "last_closed_launch": "2026-11-21T18:00:00Z", "last_start_at": ..., "last_stop_at": ...}

Robustness: a session is keyed on the instance's launch time, so closing it is
idempotent (the stop function, a re-check that finds the instance already stopped,
and the next start may all try). A stop that this project did not make (the agent's
self-stop, the console, a spot interruption) is closed by the next schedule re-check
or start, ending at the agent's last heartbeat of that boot. A boot this project did
not start is counted when it is closed. A malformed document starts afresh. Writers
are the start and stop functions, whose calls the instance state serialises; the
rare lost update costs one start or one session, never money.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from autostop_contract import AgentRecord, iso, parse_time

from autostop import aws, records

if TYPE_CHECKING:
    from autostop.config import Config
    from autostop.ec2 import Instance

VERSION = 1
DAYS_KEPT = 8


def month_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def month_start(moment: datetime) -> datetime:
    m = moment.astimezone(UTC)
    return datetime(m.year, m.month, 1, tzinfo=UTC)


def next_month_start(moment: datetime) -> datetime:
    m = month_start(moment)
    return datetime(m.year + (m.month == 12), m.month % 12 + 1, 1, tzinfo=UTC)


def month_fraction_elapsed(now: datetime) -> float:
    start, end = month_start(now), next_month_start(now)
    return (now - start).total_seconds() / (end - start).total_seconds()


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def _num(value: Any, default: float = 0.0) -> float:
    return (
        float(value)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        else default
    )


@dataclass
class Totals:
    month: str
    seconds: float = 0.0
    starts: int = 0
    images: int = 0
    cost_usd: float = 0.0

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "seconds": round(self.seconds, 1),
            "starts": self.starts,
            "images": self.images,
            "cost_usd": round(self.cost_usd, 4),
        }

    @classmethod
    def parse(cls, data: Any, month: str) -> Totals:
        if not isinstance(data, dict):
            return cls(month)
        return cls(
            month=str(data.get("month") or month),
            seconds=_num(data.get("seconds")),
            starts=int(_num(data.get("starts"))),
            images=int(_num(data.get("images"))),
            cost_usd=_num(data.get("cost_usd")),
        )


@dataclass
class Ledger:
    current: Totals
    prev: Totals | None = None
    #: UTC day -> [running seconds, starts, images]
    days: dict[str, list[float]] = field(default_factory=dict)
    open: dict[str, Any] | None = None
    last_closed_launch: str | None = None
    last_start_at: datetime | None = None
    last_stop_at: datetime | None = None

    # --- (de)serialisation ----------------------------------------------------------------
    @classmethod
    def empty(cls, now: datetime) -> Ledger:
        return cls(Totals(month_of(now)))

    @classmethod
    def parse(cls, text: str | None, now: datetime) -> Ledger:
        """Forgiving: a missing or malformed document is an empty ledger for this month."""
        data = records.json_object(text)
        if data is None or not isinstance(data.get("month"), str):
            return cls.empty(now)
        days: dict[str, list[float]] = {}
        for day, row in (data.get("days") or {}).items() if isinstance(data.get("days"), dict) else []:
            if isinstance(row, list) and len(row) == 3:
                days[str(day)] = [_num(row[0]), _num(row[1]), _num(row[2])]
        opened = data.get("open")
        if not (isinstance(opened, dict) and parse_time(opened.get("launch_time"))):
            opened = None
        return cls(
            current=Totals.parse(data, data["month"]),
            prev=Totals.parse(data["prev"], "") if isinstance(data.get("prev"), dict) else None,
            days=days,
            open=opened,
            last_closed_launch=data.get("last_closed_launch")
            if isinstance(data.get("last_closed_launch"), str)
            else None,
            last_start_at=parse_time(data.get("last_start_at")),
            last_stop_at=parse_time(data.get("last_stop_at")),
        )

    def dumps(self) -> str:
        doc: dict[str, Any] = {"v": VERSION, **self.current.as_dict()}
        doc["prev"] = self.prev.as_dict() if self.prev else None
        doc["days"] = {d: [round(r[0], 1), int(r[1]), int(r[2])] for d, r in sorted(self.days.items())}
        doc["open"] = self.open
        doc["last_closed_launch"] = self.last_closed_launch
        doc["last_start_at"] = iso(self.last_start_at)
        doc["last_stop_at"] = iso(self.last_stop_at)
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    # --- bookkeeping ----------------------------------------------------------------------
    def roll(self, now: datetime) -> None:
        """Start a new month when ``now`` is in one; forget days older than the window."""
        month = month_of(now)
        if self.current.month != month:
            self.prev = self.current if self.current.month < month else self.prev
            self.current = Totals(month)
        oldest = _day(now - timedelta(days=DAYS_KEPT - 1))
        self.days = {d: r for d, r in self.days.items() if d >= oldest}

    def _day_row(self, day: str) -> list[float]:
        return self.days.setdefault(day, [0.0, 0.0, 0.0])

    def _count_start(self, at: datetime, now: datetime) -> None:
        target = self.current if month_of(at) == self.current.month else self.prev
        if target is not None and target.month == month_of(at):
            target.starts += 1
        if _day(at) >= _day(now - timedelta(days=DAYS_KEPT - 1)):
            self._day_row(_day(at))[1] += 1

    def _add_running(self, start: datetime, end: datetime, price: float, now: datetime) -> None:
        """Add [start, end) to the month totals and the day rows, split at month and day boundaries."""
        oldest_day = _day(now - timedelta(days=DAYS_KEPT - 1))
        cursor = start
        while cursor < end:
            day_end = datetime(cursor.year, cursor.month, cursor.day, tzinfo=UTC) + timedelta(days=1)
            piece_end = min(end, day_end)
            seconds = (piece_end - cursor).total_seconds()
            month = month_of(cursor)
            for totals in (self.current, self.prev):
                if totals is not None and totals.month == month:
                    totals.seconds += seconds
                    totals.cost_usd += seconds / 3600 * price
            if _day(cursor) >= oldest_day:
                self._day_row(_day(cursor))[0] += seconds
            cursor = piece_end

    def record_start(self, now: datetime, launch_time: datetime, instance_type: str, price: float) -> None:
        self.roll(now)
        self._count_start(now, now)
        self.open = {"launch_time": iso(launch_time), "instance_type": instance_type, "price": price}
        self.last_start_at = now

    def record_stop(
        self,
        now: datetime,
        launch_time: datetime,
        instance_type: str,
        price: float,
        images: int = 0,
        end: datetime | None = None,
    ) -> bool:
        """Close the session of the boot that began at ``launch_time``; False when already closed."""
        self.roll(now)
        key = iso(launch_time)
        if key is None or self.last_closed_launch == key:
            return False
        end = min(end or now, now)
        opened = self.open if self.open and self.open.get("launch_time") == key else None
        if opened is None:
            self._count_start(launch_time, now)  # a boot this project did not start (console, ...)
        else:
            price = _num(opened.get("price"), price)
        if end > launch_time:
            self._add_running(launch_time, end, price, now)
        if month_of(end) == self.current.month:
            self.current.images += images
        if images and _day(end) >= _day(now - timedelta(days=DAYS_KEPT - 1)):
            self._day_row(_day(end))[2] += images
        opened_at = self.open_launch()
        if opened_at is not None and opened_at <= launch_time:
            self.open = None
        self.last_closed_launch = key
        self.last_stop_at = end
        return True

    # --- reading ------------------------------------------------------------------------------
    def open_launch(self) -> datetime | None:
        return parse_time(self.open.get("launch_time")) if self.open else None

    def last_days(self, now: datetime, days: int = 7) -> tuple[float, int, int]:
        """Running seconds, starts and images of the ``days`` full UTC days before today."""
        today = now.astimezone(UTC).date()
        wanted = {(today - timedelta(days=n)).isoformat() for n in range(1, days + 1)}
        rows = [r for d, r in self.days.items() if d in wanted]
        return sum(r[0] for r in rows), int(sum(r[1] for r in rows)), int(sum(r[2] for r in rows))


# --- storage --------------------------------------------------------------------------------------


def read(parameter: str, now: datetime) -> Ledger:
    ledger = Ledger.parse(records.get_parameter(parameter), now)  # missing: an empty ledger
    ledger.roll(now)
    return ledger


def write(parameter: str, ledger: Ledger) -> None:
    aws.client("ssm").put_parameter(Name=parameter, Value=ledger.dumps(), Type="String", Overwrite=True)


# --- kept by the start and stop functions -------------------------------------------------------------


def session_price(config: Config, instance: Instance) -> float:
    """The hourly price of this boot (typical spot for a spot instance); never unknown."""
    from autostop.pricing import cautious_hourly_price

    market = "spot" if instance.lifecycle == "spot" else "on-demand"
    return cautious_hourly_price(instance.instance_type, config.region, config.hourly_price_usd, market)


def close_unfinished(config: Config, now: datetime, book: Ledger, current_launch: datetime | None) -> bool:
    """Close a session whose stop this project did not see, ending at that boot's last heartbeat."""
    opened = book.open_launch()
    if opened is None or opened == current_launch:
        return False
    record = records.read_agent_record(config.agent_state_parameter, config.instance_id)
    of_boot = record is not None and record.is_of_boot(opened)
    ended = record.heartbeat_at if record and of_boot and record.heartbeat_at > opened else now
    images = record.images_completed if record and of_boot else 0
    details = book.open or {}
    price = float(details.get("price") or 0.0)
    return book.record_stop(now, opened, str(details.get("instance_type")), price, images=images, end=ended)


def on_start(config: Config, now: datetime, instance: Instance) -> None:
    assert config.ledger_parameter
    book = read(config.ledger_parameter, now)
    close_unfinished(config, now, book, instance.launch_time)
    book.record_start(
        now, instance.launch_time or now, instance.instance_type, session_price(config, instance)
    )
    write(config.ledger_parameter, book)


def on_stop(config: Config, now: datetime, instance: Instance, record: AgentRecord | None) -> None:
    assert config.ledger_parameter
    if instance.launch_time is None:
        return
    book = read(config.ledger_parameter, now)
    images = record.images_completed if record and record.is_of_boot(instance.launch_time) else 0
    if book.record_stop(
        now, instance.launch_time, instance.instance_type, session_price(config, instance), images
    ):
        write(config.ledger_parameter, book)


def reconcile(config: Config, now: datetime) -> None:
    """On a re-check of a stopped instance: close a session whose stop the project did not make."""
    assert config.ledger_parameter
    book = read(config.ledger_parameter, now)
    if close_unfinished(config, now, book, None):
        write(config.ledger_parameter, book)
