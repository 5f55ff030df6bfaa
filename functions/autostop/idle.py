"""The stop rule: the one place that decides whether the GPU instance may be stopped.

Pure: no AWS calls, the clock is passed in. The stop function, the status
function, the cost simulator and the tests all use it.

docs/design.md#the-stop-rule: not running -> nothing. Within BOOT_GRACE_MINUTES of the
launch -> keep. idle_since = latest of (agent last_activity_at, lease, launch
time). Agent record fresh -> stop when now - idle_since >= IDLE_MINUTES. Agent
record stale or missing -> fall back to CloudWatch EC2 metrics over the idle
window (CPU and network under thresholds, BOTH measured) and say that the agent
is silent. A current record in the "installing" phase keeps the instance until
INSTALL_TIMEOUT_MINUTES after the install began, then stops it (install_timeout).
Agent silent and no usable metrics: keep, but never forever: after
SILENT_STOP_MINUTES without a sign of life stop anyway (silent_stop, the one
deliberate exception to "never under a running job": nothing can be seen).

CloudWatch: "By default, your instance is enabled for basic monitoring ... data
is available automatically in 5-minute periods" (Amazon EC2 User Guide, "Manage
detailed monitoring for your EC2 instances"); and the first datapoints arrive a
few minutes after each period, hence SILENT_ALERT_MINUTES.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from autostop_contract import AgentRecord

from autostop.config import Config

#: Period of the EC2 metrics read when the agent is silent (basic monitoring granularity).
METRIC_PERIOD_SECONDS = 300
#: The fallback never looks at fewer minutes than this (two basic-monitoring periods).
MIN_METRIC_WINDOW_MINUTES = 10.0
#: Silent agent and no usable metrics for longer than basic metrics can lag (two 5-minute periods
#: plus publication delay): the stop function emails once. An ordinary boot never gets here.
SILENT_ALERT_MINUTES = 15.0


@dataclass(frozen=True)
class StopPolicy:
    idle_minutes: float = 10.0
    boot_grace_minutes: float = 5.0
    stale_after_seconds: float = 180.0
    cpu_idle_percent: float = 5.0
    network_idle_bytes: float = 1_000_000.0
    install_timeout_minutes: float = 45.0
    silent_stop_minutes: float = 90.0

    @classmethod
    def from_config(cls, config: Config) -> StopPolicy:
        return cls(
            idle_minutes=config.idle_minutes,
            boot_grace_minutes=config.boot_grace_minutes,
            stale_after_seconds=config.stale_after_seconds,
            cpu_idle_percent=config.cpu_idle_percent,
            network_idle_bytes=config.network_idle_bytes,
            install_timeout_minutes=config.install_timeout_minutes,
            silent_stop_minutes=config.silent_stop_minutes,
        )

    @property
    def metric_window_minutes(self) -> float:
        return max(self.idle_minutes, MIN_METRIC_WINDOW_MINUTES)


@dataclass(frozen=True)
class Ec2Metrics:
    """EC2 metrics over the idle window: the highest period values seen."""

    cpu_max_percent: float | None
    network_out_max_bytes: float | None
    datapoints: int


@dataclass(frozen=True)
class Verdict:
    stop: bool
    #: Short machine-readable code of the decision (logged as ``decision_code``).
    code: str
    #: A sentence a person reads in the answer, the log and the alert email.
    reason: str
    idle_minutes: float | None = None
    idle_since: datetime | None = None
    agent_silent: bool = False
    #: Minutes since the last sign of life (agent heartbeat of this boot, start request, launch) when
    #: the agent is silent and the metrics say nothing; the stop function alerts past SILENT_ALERT_MINUTES.
    silent_minutes: float | None = None


def agent_is_current(
    record: AgentRecord | None, now: datetime, policy: StopPolicy, launch_time: datetime | None
) -> bool:
    """True when the record is fresh and was written during this boot."""
    return record is not None and record.is_current(now, policy.stale_after_seconds, launch_time)


def idle_since(
    record: AgentRecord | None, lease_at: datetime | None, launch_time: datetime | None
) -> datetime | None:
    """Latest of the agent's last activity (when the record is usable), the lease and the launch."""
    moments = [t for t in (record.last_activity_at if record else None, lease_at, launch_time) if t]
    return max(moments) if moments else None


def last_sign_of_life(
    record: AgentRecord | None, lease_at: datetime | None, launch_time: datetime | None
) -> datetime | None:
    """Latest of this boot's last agent heartbeat (even a stale one), the lease and the launch."""
    heartbeat = record.heartbeat_at if record is not None and record.is_of_boot(launch_time) else None
    moments = [t for t in (heartbeat, lease_at, launch_time) if t]
    return max(moments) if moments else None


def _minutes(delta: timedelta) -> float:
    return max(delta.total_seconds() / 60.0, 0.0)


def decide(
    *,
    now: datetime,
    state: str,
    launch_time: datetime | None,
    lease_at: datetime | None,
    record: AgentRecord | None,
    policy: StopPolicy,
    metrics: Ec2Metrics | None = None,
) -> Verdict:
    """Decide whether to stop. ``metrics`` matters only when the agent record is not current."""
    if state != "running":
        return Verdict(False, "not_running", f"instance is {state}, nothing to stop")

    if launch_time is not None and now - launch_time < timedelta(minutes=policy.boot_grace_minutes):
        up = _minutes(now - launch_time)
        return Verdict(
            False,
            "boot_grace",
            f"within boot grace: up {up:.1f} of {policy.boot_grace_minutes:g} minutes",
        )

    current = agent_is_current(record, now, policy, launch_time)
    usable = record if current else None
    since = idle_since(usable, lease_at, launch_time)
    idle = _minutes(now - since) if since else policy.idle_minutes
    needed = policy.idle_minutes

    if usable is not None:
        if usable.queue_depth > 0:
            return Verdict(
                False,
                "queue_busy",
                f"ComfyUI queue busy: {usable.queue_running} running, {usable.queue_pending} pending",
                0.0,
                since,
            )
        if usable.sessions > 0:
            return Verdict(
                False, "session_open", f"{usable.sessions} interactive session(s) open", 0.0, since
            )
        if usable.phase == "installing":
            return _installing(now, usable, launch_time, policy, since)
        if idle < needed:
            what = "a start request" if since == lease_at else "the launch"
            if since == usable.last_activity_at:
                what = "the last activity"
            return Verdict(
                False,
                "recent_activity",
                f"idle {idle:.1f} of {needed:g} minutes since {what}",
                idle,
                since,
            )
        return Verdict(True, "idle", f"idle for {idle:.1f} minutes (limit {needed:g})", idle, since)

    # The agent is silent: its record is missing, stale or from an earlier boot.
    silent = "agent silent (no current state record)"
    if idle < needed:
        return Verdict(
            False,
            "recent_start",
            f"{silent}; idle {idle:.1f} of {needed:g} minutes",
            idle,
            since,
            True,
        )
    if metrics is None:
        return Verdict(False, "no_metrics", f"{silent}; CloudWatch EC2 data not read yet", idle, since, True)
    cpu = metrics.cpu_max_percent
    if cpu is not None and cpu >= policy.cpu_idle_percent:
        return Verdict(
            False,
            "cpu_busy",
            f"{silent}; CPU reached {cpu:.1f}% (idle below {policy.cpu_idle_percent:g}%)",
            idle,
            since,
            True,
        )
    net = metrics.network_out_max_bytes
    if net is not None and net >= policy.network_idle_bytes:
        return Verdict(
            False,
            "network_busy",
            f"{silent}; NetworkOut reached {net:,.0f} bytes per {METRIC_PERIOD_SECONDS // 60} min "
            f"(idle below {policy.network_idle_bytes:,.0f})",
            idle,
            since,
            True,
        )
    if metrics.datapoints == 0 or cpu is None or net is None:
        return _unseen(now, record, lease_at, launch_time, policy, metrics, idle, since)
    return Verdict(
        True,
        "idle_by_metrics",
        f"{silent}; CPU and network idle for {policy.metric_window_minutes:g} minutes, "
        f"no start for {idle:.1f} minutes",
        idle,
        since,
        True,
    )


def _installing(
    now: datetime,
    record: AgentRecord,
    launch_time: datetime | None,
    policy: StopPolicy,
    since: datetime | None,
) -> Verdict:
    """Keep while the first-boot install runs; stop once it has taken INSTALL_TIMEOUT_MINUTES."""
    began = record.install_started_at or launch_time  # missing or future (distrusted): the launch
    limit = policy.install_timeout_minutes
    taken = _minutes(now - began) if began else 0.0
    if taken >= limit:
        return Verdict(
            True,
            "install_timeout",
            f"the first-boot install did not finish in {limit:g} minutes (running {taken:.1f})",
            taken,
            since,
        )
    return Verdict(
        False, "installing", f"first-boot install running: {taken:.1f} of {limit:g} minutes", 0.0, since
    )


def _unseen(
    now: datetime,
    record: AgentRecord | None,
    lease_at: datetime | None,
    launch_time: datetime | None,
    policy: StopPolicy,
    metrics: Ec2Metrics,
    idle: float,
    since: datetime | None,
) -> Verdict:
    """Agent silent and CloudWatch without both metrics: keep, alert, and after SILENT_STOP_MINUTES stop."""
    life = last_sign_of_life(record, lease_at, launch_time)
    quiet = _minutes(now - life) if life else policy.silent_stop_minutes
    window = f"{policy.metric_window_minutes:g} minutes"
    if metrics.datapoints == 0:
        code, what = "no_metrics", f"no CloudWatch EC2 data for the last {window}"
    else:
        missing = "NetworkOut" if metrics.network_out_max_bytes is None else "CPUUtilization"
        code, what = "metrics_incomplete", f"no CloudWatch {missing} data for the last {window} (both needed)"
    silent = "agent silent (no current state record)"
    if quiet >= policy.silent_stop_minutes:
        return Verdict(
            True,
            "silent_stop",
            f"{silent} and {what}, no sign of life for {quiet:.1f} minutes "
            f"(limit {policy.silent_stop_minutes:g}): stopped without seeing whether a job runs",
            idle,
            since,
            True,
            quiet,
        )
    return Verdict(
        False,
        code,
        f"{silent} and {what}; no sign of life for {quiet:.1f} minutes, "
        f"stop after {policy.silent_stop_minutes:g}; the schedule re-checks",
        idle,
        since,
        True,
        quiet,
    )
