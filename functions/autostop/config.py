"""Configuration of the Lambda functions, read once from the environment.

The contract (docs/operations.md#the-functions-environment): Terraform sets these variables. A
missing required variable or a malformed value raises ConfigError naming it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from autostop_contract import bounded_number

#: ``IDLE_MINUTES`` etc. must be finite and within these bounds.
_MAX_MINUTES = 24 * 60.0


class ConfigError(RuntimeError):
    """The function's environment is incomplete or malformed (a deployment fault)."""


@dataclass(frozen=True)
class Config:
    instance_id: str
    agent_state_parameter: str
    lease_parameter: str
    alert_topic_arn: str | None = None
    idle_minutes: float = 10.0
    boot_grace_minutes: float = 5.0
    heartbeat_seconds: float = 60.0
    comfyui_port: int = 8188
    fallback_instance_types: tuple[str, ...] = ()
    #: The type Terraform declared; start returns the instance to it when it can.
    instance_type: str | None = None
    #: Overrides the pricing table for cost estimates.
    hourly_price_usd: float | None = None
    #: Thresholds for the CloudWatch fallback when the agent is silent.
    cpu_idle_percent: float = 5.0
    network_idle_bytes: float = 1_000_000.0
    #: The function's region (set by the Lambda runtime), for prices.
    region: str = ""
    #: SSM parameter of the usage ledger (running time, starts, images); none: no own figures.
    ledger_parameter: str | None = None
    #: SSM parameter of the hard cap's "tripped" flag; set: start refuses while it is tripped.
    cap_parameter: str | None = None
    #: The hard cap on the month-to-date estimate (needs CAP_PARAMETER and LEDGER_PARAMETER).
    hard_cap_usd: float | None = None
    #: Monthly costs that do not depend on running time, for the estimate; none: the pricing table's.
    fixed_monthly_usd: float | None = None
    #: The cost-allocation tag the weekly report filters Cost Explorer on; none: the EC2 service.
    cost_tag_key: str | None = None
    cost_tag_value: str | None = None
    #: Monthly budgets the weekly report compares spend with.
    budgets_usd: tuple[float, ...] = (50.0, 150.0)
    #: Longest the first-boot install may report "installing" before the stop rule stops the instance.
    install_timeout_minutes: float = 45.0
    #: Agent silent and no usable CloudWatch data this long: the stop rule stops anyway (the exception).
    silent_stop_minutes: float = 90.0
    #: SSM parameter where the stop function records that it is about to stop (start reads it).
    stop_intent_parameter: str | None = None
    #: SSM parameter of the stop function's "silent agent alerted" note (one email per boot).
    silent_note_parameter: str | None = None

    @property
    def stale_after_seconds(self) -> float:
        """An agent record older than this is stale (3 heartbeats)."""
        return 3 * self.heartbeat_seconds


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required but not set")
    return value


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _number(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return bounded_number(raw, low, high)
    except ValueError as exc:
        raise ConfigError(f"environment variable {name} {exc}, got {raw!r}") from None


def _optional_number(env: Mapping[str, str], name: str, *, low: float, high: float) -> float | None:
    if _optional(env, name) is None:
        return None
    return _number(env, name, 0.0, low=low, high=high)


def _budgets(env: Mapping[str, str]) -> tuple[float, ...]:
    raw = env.get("BUDGETS_USD", "").strip()
    if not raw:
        return (50.0, 150.0)
    values = []
    for part in raw.split(","):
        try:
            value = float(part)
        except ValueError:
            raise ConfigError(
                f"environment variable BUDGETS_USD must be a comma list of USD amounts, got {raw!r}"
            ) from None
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"environment variable BUDGETS_USD must hold positive amounts, got {raw!r}")
        values.append(value)
    return tuple(values)


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Read the configuration from ``env`` (default: ``os.environ``)."""
    env = os.environ if env is None else env
    port = _number(env, "COMFYUI_PORT", 8188, low=1, high=65535)
    if port != int(port):
        raise ConfigError(f"environment variable COMFYUI_PORT must be an integer, got {port:g}")
    fallbacks = tuple(t.strip() for t in env.get("FALLBACK_INSTANCE_TYPES", "").split(",") if t.strip())
    price = _optional(env, "HOURLY_PRICE_USD")
    hard_cap = _optional_number(env, "HARD_CAP_USD", low=0.01, high=1_000_000)
    ledger = _optional(env, "LEDGER_PARAMETER")
    cap = _optional(env, "CAP_PARAMETER")
    if hard_cap is not None:
        for name, value in (("CAP_PARAMETER", cap), ("LEDGER_PARAMETER", ledger)):
            if value is None:
                raise ConfigError(f"environment variable {name} is required when HARD_CAP_USD is set")
    tag_key, tag_value = _optional(env, "COST_TAG_KEY"), _optional(env, "COST_TAG_VALUE")
    if (tag_key is None) != (tag_value is None):
        missing = "COST_TAG_VALUE" if tag_value is None else "COST_TAG_KEY"
        raise ConfigError(
            f"environment variable {missing} is required when the other COST_TAG_ variable is set"
        )
    idle = _number(env, "IDLE_MINUTES", 10.0, low=0.05, high=_MAX_MINUTES)
    silent_stop = _number(env, "SILENT_STOP_MINUTES", 90.0, low=1, high=_MAX_MINUTES)
    if silent_stop <= idle + 10:
        # Longer than the agent's own self-stop (IDLE_MINUTES + 10 at the least): the agent gets its chance.
        raise ConfigError(
            f"environment variable SILENT_STOP_MINUTES must exceed IDLE_MINUTES + 10 ({idle + 10:g}), "
            f"got {silent_stop:g}"
        )
    return Config(
        instance_id=_required(env, "INSTANCE_ID"),
        agent_state_parameter=_required(env, "AGENT_STATE_PARAMETER"),
        lease_parameter=_required(env, "LEASE_PARAMETER"),
        alert_topic_arn=_optional(env, "ALERT_TOPIC_ARN"),
        idle_minutes=idle,
        boot_grace_minutes=_number(env, "BOOT_GRACE_MINUTES", 5.0, low=0, high=_MAX_MINUTES),
        heartbeat_seconds=_number(env, "HEARTBEAT_SECONDS", 60.0, low=1, high=3600),
        comfyui_port=int(port),
        fallback_instance_types=fallbacks,
        instance_type=_optional(env, "INSTANCE_TYPE"),
        hourly_price_usd=None if price is None else _number(env, "HOURLY_PRICE_USD", 0.0, low=0, high=1000),
        cpu_idle_percent=_number(env, "CPU_IDLE_PERCENT", 5.0, low=0, high=100),
        network_idle_bytes=_number(env, "NETWORK_IDLE_BYTES", 1_000_000.0, low=0, high=1e12),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "",
        ledger_parameter=ledger,
        cap_parameter=cap,
        hard_cap_usd=hard_cap,
        fixed_monthly_usd=_optional_number(env, "FIXED_MONTHLY_USD", low=0, high=100_000),
        cost_tag_key=tag_key,
        cost_tag_value=tag_value,
        budgets_usd=_budgets(env),
        install_timeout_minutes=_number(env, "INSTALL_TIMEOUT_MINUTES", 45.0, low=1, high=_MAX_MINUTES),
        silent_stop_minutes=silent_stop,
        stop_intent_parameter=_optional(env, "STOP_INTENT_PARAMETER"),
        silent_note_parameter=_optional(env, "SILENT_NOTE_PARAMETER"),
    )
