"""``gpu-autostop-tools price-table``: the built-in prices with their sources."""

from __future__ import annotations

import pytest

from gpu_autostop_tools import price_table


def test_the_table_prints_with_sources(capsys: pytest.CaptureFixture[str]) -> None:
    assert price_table.main(["--region", "eu-west-1"]) == 0
    out = capsys.readouterr().out
    assert "g6.xlarge" in out
    assert "not offered" in out
    assert "ebs_gp3_gb_month" in out
    assert "0.088" in out
    assert "SkyPilot" in out
