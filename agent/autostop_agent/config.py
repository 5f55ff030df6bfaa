"""Agent configuration: environment variables, optionally from an env file.

Values come from ``/etc/gpu-autostop/agent.env`` (or ``AGENT_ENV_FILE`` /
``--env-file``) with the process environment taking precedence. An invalid value
raises ConfigError naming the variable; the agent then exits at start (status
78, which the systemd unit does not restart).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from autostop_contract import bounded_number, parse_time

DEFAULT_ENV_FILE = "/etc/gpu-autostop/agent.env"
EX_CONFIG = 78

_PARAMETER_NAME = re.compile(r"^[a-zA-Z0-9_.\-/]{1,1011}$")
_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9.\-_/#:]{1,255}$")


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class Config:
    comfyui_url: str = "http://127.0.0.1:8188"
    #: SSM parameter of the agent state record (required by the loop, not by --once).
    agent_state_parameter: str | None = None
    instance_id: str | None = None
    region: str | None = None
    metrics_namespace: str = "GpuAutostop"
    poll_seconds: float = 5.0
    startup_poll_seconds: float = 1.0
    heartbeat_seconds: float = 60.0
    metrics_seconds: float = 60.0
    idle_minutes: float = 10.0
    #: 0 disables the self-stop.
    self_stop_minutes: float = 20.0
    self_stop_checks: int = 3
    boot_grace_minutes: float = 5.0
    shutdown_command: tuple[str, ...] = ("shutdown", "-h", "now")
    gpu_busy_percent: float = 10.0
    cpu_busy_percent: float = 30.0
    cpu_window_seconds: float = 60.0
    activity_process_regex: re.Pattern[str] | None = field(default=None, compare=False)
    comfyui_timeout_seconds: float = 3.0
    lock_file: str = "/run/gpu-autostop/agent.lock"
    imds_endpoint: str = "http://169.254.169.254"
    #: Count SSH/SSM/tmux/screen sessions as activity. Off only where the agent watches a
    #: machine other than its own (the local demo), never on the GPU instance.
    detect_sessions: bool = True
    #: When the watched machine booted; None reads it from /proc/stat. Like DETECT_SESSIONS, only
    #: for an agent watching another machine (the local demo, where each "boot" is simulated).
    boot_at: datetime | None = None
    #: The bootstrap's marker file: present while the first-boot install runs (content: its start time).
    install_marker: str = "/opt/gpu-autostop/installing"
    #: The stop function's limit for that install; the agent's own last resort waits 10 minutes more.
    install_timeout_minutes: float = 45.0

    @property
    def self_stop_enabled(self) -> bool:
        return self.self_stop_minutes > 0


#: Characters no env file line may hold (control characters other than tab; DEL).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def parse_env_file(text: str, source: str = "env file") -> dict[str, str]:
    """``KEY=value`` lines; blank lines and ``#`` comments skipped; one pair of surrounding quotes removed.

    Anything else (no ``=``, a bad name, an unmatched quote, a control character) raises ConfigError
    naming ``source`` and the line, so a damaged file stops the agent at start (exit 78) instead of
    being half read.
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"{source} line {number}"
        if _CONTROL.search(line):
            raise ConfigError(f"{where}: control character in {line[:60]!r}")
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConfigError(f"{where}: expected KEY=value, got {raw.strip()[:60]!r}")
        value = value.strip()
        if value[:1] in ("'", '"'):
            if len(value) < 2 or value[-1] != value[0]:
                raise ConfigError(f"{where}: {key} has an unmatched {value[0]} quote")
            value = value[1:-1]
        values[key] = value
    return values


def read_environment(
    env: Mapping[str, str] | None = None, env_file: str | None = None, *, file_required: bool = False
) -> dict[str, str]:
    """The env file's values overlaid by ``env`` (default ``os.environ``)."""
    env = dict(os.environ if env is None else env)
    path = env_file or env.get("AGENT_ENV_FILE") or DEFAULT_ENV_FILE
    merged: dict[str, str] = {}
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        if file_required or env_file or env.get("AGENT_ENV_FILE"):
            raise ConfigError(f"env file {path} does not exist (AGENT_ENV_FILE / --env-file)") from None
        data = b""
    except OSError as exc:
        raise ConfigError(f"env file {path} cannot be read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"env file {path} line {line}: not UTF-8 (byte {data[exc.start]:#04x})") from None
    merged.update(parse_env_file(text, f"env file {path}"))
    merged.update(env)
    return merged


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _number(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return bounded_number(raw, low, high)
    except ValueError as exc:
        raise ConfigError(f"{name} {exc}, got {raw!r}") from None


def _integer(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    value = _number(env, name, default, low=low, high=high)
    if value != int(value):
        raise ConfigError(f"{name} must be a whole number, got {env.get(name)!r}")
    return int(value)


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = _text(env, name) or default
    parts = urlsplit(raw)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{name} has an invalid port: {raw!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise ConfigError(f"{name} must be an http(s) URL like http://127.0.0.1:8188, got {raw!r}")
    return raw.rstrip("/")


def _time(env: Mapping[str, str], name: str) -> datetime | None:
    value = _text(env, name)
    if value is None:
        return None
    parsed = parse_time(value)
    if parsed is None:
        raise ConfigError(f"{name} must be a UTC ISO-8601 time like 2026-11-22T08:00:03Z, got {value!r}")
    return parsed


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = (_text(env, name) or "").lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {env.get(name)!r}")


def _matching(env: Mapping[str, str], name: str, pattern: re.Pattern[str], example: str) -> str | None:
    value = _text(env, name)
    if value is not None and not pattern.match(value):
        raise ConfigError(f"{name} is not a valid value (expected something like {example}), got {value!r}")
    return value


def load_config(env: Mapping[str, str], *, require_parameter: bool = True) -> Config:
    """Build the Config from already-merged variables (see read_environment)."""
    parameter = _matching(env, "AGENT_STATE_PARAMETER", _PARAMETER_NAME, "/gpu-autostop/agent-state")
    if require_parameter and parameter is None:
        raise ConfigError("AGENT_STATE_PARAMETER is required (the SSM parameter of the agent state record)")
    region = _matching(env, "AWS_REGION", _REGION, "eu-central-1") or _matching(
        env, "AWS_DEFAULT_REGION", _REGION, "eu-central-1"
    )
    namespace = _matching(env, "METRICS_NAMESPACE", _NAMESPACE, "GpuAutostop") or "GpuAutostop"
    if namespace.startswith("AWS/"):
        raise ConfigError(f"METRICS_NAMESPACE must not start with 'AWS/', got {namespace!r}")

    poll = _number(env, "POLL_SECONDS", 5.0, low=0.5, high=300)
    startup_poll = _number(env, "STARTUP_POLL_SECONDS", min(1.0, poll), low=0.2, high=300)
    if startup_poll > poll:
        raise ConfigError(
            f"STARTUP_POLL_SECONDS must not exceed POLL_SECONDS ({poll:g}), got {startup_poll:g}"
        )
    heartbeat = _number(env, "HEARTBEAT_SECONDS", 60.0, low=5, high=3600)
    if heartbeat < poll:
        raise ConfigError(f"HEARTBEAT_SECONDS must be at least POLL_SECONDS ({poll:g}), got {heartbeat:g}")
    idle = _number(env, "IDLE_MINUTES", 10.0, low=0.05, high=24 * 60)
    self_stop = _number(env, "SELF_STOP_MINUTES", idle + 10.0, low=0, high=7 * 24 * 60)
    if 0 < self_stop < idle:
        raise ConfigError(
            f"SELF_STOP_MINUTES must be 0 (off) or at least IDLE_MINUTES ({idle:g}): the self-stop is the "
            f"last line of defence behind the control plane, got {self_stop:g}"
        )

    command_text = env.get("SHUTDOWN_COMMAND", "shutdown -h now").strip()
    try:
        command = tuple(shlex.split(command_text))
    except ValueError as exc:
        raise ConfigError(f"SHUTDOWN_COMMAND cannot be parsed: {exc}") from None
    if not command:
        raise ConfigError(
            "SHUTDOWN_COMMAND must not be empty (set SELF_STOP_MINUTES=0 to turn the self-stop off)"
        )

    regex_text = _text(env, "ACTIVITY_PROCESS_REGEX")
    regex = None
    if regex_text is not None:
        try:
            regex = re.compile(regex_text)
        except re.error as exc:
            raise ConfigError(f"ACTIVITY_PROCESS_REGEX is not a valid regular expression: {exc}") from None

    lock_file = _text(env, "AGENT_LOCK_FILE") or Config.lock_file
    if not lock_file.startswith("/"):
        raise ConfigError(f"AGENT_LOCK_FILE must be an absolute path, got {lock_file!r}")

    install_marker = _text(env, "INSTALL_MARKER") or Config.install_marker
    if not install_marker.startswith("/"):
        raise ConfigError(f"INSTALL_MARKER must be an absolute path, got {install_marker!r}")

    return Config(
        comfyui_url=_url(env, "COMFYUI_URL", Config.comfyui_url),
        agent_state_parameter=parameter,
        instance_id=_matching(env, "INSTANCE_ID", _INSTANCE_ID, "i-0123456789abcdef0"),
        region=region,
        metrics_namespace=namespace,
        poll_seconds=poll,
        startup_poll_seconds=startup_poll,
        heartbeat_seconds=heartbeat,
        metrics_seconds=_number(env, "METRICS_SECONDS", 60.0, low=10, high=3600),
        idle_minutes=idle,
        self_stop_minutes=self_stop,
        self_stop_checks=_integer(env, "SELF_STOP_CHECKS", 3, low=1, high=1000),
        boot_grace_minutes=_number(env, "BOOT_GRACE_MINUTES", 5.0, low=0, high=24 * 60),
        shutdown_command=command,
        gpu_busy_percent=_number(env, "GPU_BUSY_PERCENT", 10.0, low=0, high=100),
        cpu_busy_percent=_number(env, "CPU_BUSY_PERCENT", 30.0, low=0, high=100),
        cpu_window_seconds=_number(env, "CPU_WINDOW_SECONDS", 60.0, low=1, high=3600),
        activity_process_regex=regex,
        comfyui_timeout_seconds=_number(env, "COMFYUI_TIMEOUT_SECONDS", 3.0, low=0.05, high=60),
        lock_file=lock_file,
        imds_endpoint=_url(env, "IMDS_ENDPOINT", Config.imds_endpoint),
        detect_sessions=_flag(env, "DETECT_SESSIONS", True),
        boot_at=_time(env, "BOOT_AT"),
        install_marker=install_marker,
        install_timeout_minutes=_number(env, "INSTALL_TIMEOUT_MINUTES", 45.0, low=1, high=24 * 60),
    )
