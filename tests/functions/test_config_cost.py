"""The cost-related environment: optional, validated, and named in every error."""

from __future__ import annotations

import pytest

from autostop.config import ConfigError, load_config

BASE = {"INSTANCE_ID": "i-0abc", "AGENT_STATE_PARAMETER": "/p/agent", "LEASE_PARAMETER": "/p/lease"}


def test_defaults_leave_the_cost_features_off() -> None:
    config = load_config(BASE)
    assert config.ledger_parameter is None
    assert config.cap_parameter is None
    assert config.hard_cap_usd is None
    assert config.fixed_monthly_usd is None
    assert config.cost_tag_key is None
    assert config.cost_tag_value is None
    assert config.budgets_usd == (50.0, 150.0)


def test_all_cost_values_are_read() -> None:
    config = load_config(
        {
            **BASE,
            "LEDGER_PARAMETER": "/p/ledger",
            "CAP_PARAMETER": "/p/cap",
            "HARD_CAP_USD": "75.5",
            "FIXED_MONTHLY_USD": "14",
            "COST_TAG_KEY": "Project",
            "COST_TAG_VALUE": "gpu-autostop",
            "BUDGETS_USD": "40, 120",
        }
    )
    assert config.ledger_parameter == "/p/ledger"
    assert config.cap_parameter == "/p/cap"
    assert config.hard_cap_usd == 75.5
    assert config.fixed_monthly_usd == 14.0
    assert (config.cost_tag_key, config.cost_tag_value) == ("Project", "gpu-autostop")
    assert config.budgets_usd == (40.0, 120.0)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"HARD_CAP_USD": "50", "LEDGER_PARAMETER": "/p/l"}, "CAP_PARAMETER"),
        ({"HARD_CAP_USD": "50", "CAP_PARAMETER": "/p/c"}, "LEDGER_PARAMETER"),
        ({"HARD_CAP_USD": "fifty", "CAP_PARAMETER": "/p/c", "LEDGER_PARAMETER": "/p/l"}, "HARD_CAP_USD"),
        ({"HARD_CAP_USD": "0", "CAP_PARAMETER": "/p/c", "LEDGER_PARAMETER": "/p/l"}, "HARD_CAP_USD"),
        ({"FIXED_MONTHLY_USD": "-1"}, "FIXED_MONTHLY_USD"),
        ({"COST_TAG_KEY": "Project"}, "COST_TAG_VALUE"),
        ({"COST_TAG_VALUE": "x"}, "COST_TAG_KEY"),
        ({"BUDGETS_USD": "50,lots"}, "BUDGETS_USD"),
        ({"BUDGETS_USD": "50,-1"}, "BUDGETS_USD"),
    ],
)
def test_bad_cost_settings_are_named(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config({**BASE, **env})
