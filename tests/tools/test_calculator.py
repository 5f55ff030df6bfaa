"""The calculator's command line (``gpu-autostop-tools cost``) over the runtime's cost model."""

from __future__ import annotations

import json

import pytest

from autostop import cost
from autostop.pricing import PriceBook
from gpu_autostop_tools import calculator

BOOK = PriceBook()


def test_the_text_output_shows_the_stopped_month_both_ways(capsys: pytest.CaptureFixture[str]) -> None:
    assert calculator.main(["--hours-per-day", "4"]) == 0
    before, after = cost.stopped_month_usd(BOOK, "us-east-1")
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("Stopped month"))
    assert f"${before:.2f} before the free tier" in line
    assert f"${after:.2f} with the always-free allowances" in line


def test_json_is_one_object_with_total_and_items(capsys: pytest.CaptureFixture[str]) -> None:
    code = calculator.main(
        [
            "--instance-type",
            "g4dn.xlarge",
            "--region",
            "us-east-1",
            "--hours-per-day",
            "4",
            "--days",
            "30",
            "--json",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"total_usd", "items", "stopped_month_usd"}
    assert data["stopped_month_usd"] == dict(
        zip(("before_free_tier", "free_tier"), cost.stopped_month_usd(BOOK, "us-east-1"), strict=True)
    )
    assert set(data["items"]) == {"compute", "storage", "public_ip", "monitoring", "control_plane"}
    assert data["total_usd"] == pytest.approx(sum(data["items"].values()), abs=0.01)
    assert data["items"]["compute"] == pytest.approx(120 * 0.526, abs=0.01)


def test_text_output_explains_each_item(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        calculator.main(["--hours-per-day", "2", "--region", "eu-north-1", "--market", "spot", "--eip"]) == 0
    )
    out = capsys.readouterr().out
    for word in (
        "compute",
        "storage",
        "public_ip",
        "monitoring",
        "control_plane",
        "total",
        "Elastic IP",
        "spot",
    ):
        assert word in out
    assert "approximate" in out  # spot prices are typical, and say so


def test_a_type_not_offered_in_the_region_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        calculator.main(["--instance-type", "g6.xlarge", "--region", "eu-west-1", "--hours-per-day", "2"])
        == 2
    )
    assert "not offered in eu-west-1" in capsys.readouterr().err


def test_hours_per_day_is_required_without_table() -> None:
    with pytest.raises(SystemExit):
        calculator.main([])


def test_prices_file_overrides(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"instances": {"us-east-1": {"g4dn.xlarge": {"on_demand": 1.0}}}}))
    assert calculator.main(["--hours-per-day", "24", "--prices", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"]["compute"] == 730.0


def test_the_readme_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert calculator.main(["--table", "--region", "eu-west-1"]) == 0
    out = capsys.readouterr().out
    assert "| instance | 24/7 | 8 h/day | 4 h/day | 2 h/day |" in out
    assert "| g6.xlarge | not offered | not offered | not offered | not offered |" in out
    g4dn = next(line for line in out.splitlines() if line.startswith("| g4dn.xlarge |"))
    totals = [float(v.replace(",", "")) for v in g4dn.strip("| ").split(" | ")[1:]]
    assert totals == sorted(totals, reverse=True)  # 24/7 costs the most
    assert "| **total** |" in out
