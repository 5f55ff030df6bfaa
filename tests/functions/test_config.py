"""Config: read once into a frozen dataclass; a missing or malformed variable is named."""

from __future__ import annotations

import dataclasses

import pytest

from autostop.config import ConfigError, load_config

BASE = {"INSTANCE_ID": "i-0abc", "AGENT_STATE_PARAMETER": "/p/agent", "LEASE_PARAMETER": "/p/lease"}


def test_defaults_follow_the_contract() -> None:
    config = load_config(BASE)
    assert config.idle_minutes == 10
    assert config.boot_grace_minutes == 5
    assert config.heartbeat_seconds == 60
    assert config.stale_after_seconds == 180
    assert config.comfyui_port == 8188
    assert config.fallback_instance_types == ()
    assert config.alert_topic_arn is None
    assert config.hourly_price_usd is None


def test_config_is_frozen() -> None:
    config = load_config(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.idle_minutes = 1  # type: ignore[misc]


def test_all_values_are_read() -> None:
    config = load_config(
        {
            **BASE,
            "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t",
            "IDLE_MINUTES": "0.5",
            "BOOT_GRACE_MINUTES": "0",
            "HEARTBEAT_SECONDS": "5",
            "COMFYUI_PORT": "9000",
            "FALLBACK_INSTANCE_TYPES": " g5.xlarge, ,g6.xlarge ",
            "HOURLY_PRICE_USD": "0.9",
            "AWS_REGION": "eu-north-1",
        }
    )
    assert config.idle_minutes == 0.5
    assert config.boot_grace_minutes == 0
    assert config.stale_after_seconds == 15
    assert config.comfyui_port == 9000
    assert config.fallback_instance_types == ("g5.xlarge", "g6.xlarge")
    assert config.hourly_price_usd == 0.9
    assert config.region == "eu-north-1"


@pytest.mark.parametrize("missing", sorted(BASE))
def test_missing_required_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        load_config(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IDLE_MINUTES", "ten"),
        ("IDLE_MINUTES", "0"),
        ("IDLE_MINUTES", "nan"),
        ("BOOT_GRACE_MINUTES", "-1"),
        ("HEARTBEAT_SECONDS", "0"),
        ("COMFYUI_PORT", "70000"),
        ("COMFYUI_PORT", "80.5"),
        ("HOURLY_PRICE_USD", "cheap"),
    ],
)
def test_malformed_value_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config({**BASE, name: value})
