"""The agent's loop: read, decide busy/idle, write the state record, publish metrics, self-stop.

Everything time-related goes through the injected Clock; every AWS call goes
through an AwsSink made at use time. ``step()`` is one iteration and returns the
seconds until the next; tests drive it with a fake clock.

Cadence: ComfyUI is probed every STARTUP_POLL_SECONDS (1 s) while it is not
ready, else every POLL_SECONDS (5 s); GPU, CPU and sessions are read every
POLL_SECONDS. The record is written at once when readiness or busy/idle
changes, else every HEARTBEAT_SECONDS; metrics go out every METRICS_SECONDS.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from autostop_contract import AgentRecord, encode_record, iso, parse_time, record_document

from autostop_agent import __version__
from autostop_agent.aws import AwsSink, Backoff
from autostop_agent.clock import Clock
from autostop_agent.comfyui import MAX_HISTORY_ITEMS, ComfyError, Finished, QueueState
from autostop_agent.config import Config
from autostop_agent.history import CompletedWork
from autostop_agent.imds import Identity, ImdsError
from autostop_agent.installing import SERVING, InstallGuard, InstallPhase, read_marker
from autostop_agent.selfstop import SelfStop, run_command
from autostop_agent.sessions import Sessions

log = logging.getLogger(__name__)

#: ComfyUI counts as down (not ready) after this many failed probes in a row once it was ready.
DOWN_AFTER_FAILURES = 3
#: A stored record is of this boot when its boot_at is this close to ours (restores last_activity_at).
SAME_BOOT_TOLERANCE = timedelta(seconds=30)


class Comfy(Protocol):
    def system_stats(self) -> dict[str, Any]: ...

    def queue(self) -> QueueState: ...

    def history(self, max_items: int = ...) -> tuple[Finished, ...]: ...


class Gpu(Protocol):
    def utilization(self) -> float | None: ...

    def close(self) -> None: ...


class HostInfo(Protocol):
    def cpu_percent(self) -> float | None: ...

    def memory_percent(self) -> float | None: ...

    def boot_time(self) -> datetime | None: ...

    def uptime_seconds(self) -> float | None: ...


@dataclass(frozen=True)
class Reading:
    """GPU, CPU, memory and sessions at one moment (ComfyUI is tracked separately)."""

    gpu_pct: float | None = None
    cpu_pct: float | None = None
    mem_pct: float | None = None
    sessions: Sessions = field(default_factory=Sessions)


class _Stat:
    """CloudWatch StatisticValues accumulated between publishes."""

    def __init__(self) -> None:
        self.count, self.total, self.low, self.high = 0, 0.0, 0.0, 0.0

    def add(self, value: float) -> None:
        self.low = value if self.count == 0 else min(self.low, value)
        self.high = value if self.count == 0 else max(self.high, value)
        self.count += 1
        self.total += value

    def values(self) -> dict[str, float]:
        return {
            "SampleCount": float(self.count),
            "Sum": self.total,
            "Minimum": self.low,
            "Maximum": self.high,
        }


METRICS = (("QueueDepth", "Count"), ("GPUUtilization", "Percent"), ("ActiveSessions", "Count"))


class Agent:
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock,
        comfy: Comfy,
        gpu: Gpu,
        host: HostInfo,
        scan_sessions: Callable[[], Sessions],
        sink_factory: Callable[[str], AwsSink],
        identify: Callable[[], Identity],
        runner: Callable[[Sequence[str]], int] = run_command,
        backoff_rng: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.comfy = comfy
        self.gpu = gpu
        self.host = host
        self._scan_sessions = scan_sessions
        self._sink_factory = sink_factory
        self._identify = identify
        rng = backoff_rng or random.random
        self._identity_backoff = Backoff(rng=rng)
        self._write_backoff = Backoff(rng=rng)
        self._metrics_backoff = Backoff(rng=rng)
        self.self_stop = SelfStop(
            minutes=config.self_stop_minutes,
            checks=config.self_stop_checks,
            boot_grace_minutes=config.boot_grace_minutes,
            command=config.shutdown_command,
            runner=runner,
        )
        self.install_guard = InstallGuard(
            timeout_minutes=config.install_timeout_minutes,
            boot_grace_minutes=config.boot_grace_minutes,
            enabled=config.self_stop_enabled,
        )
        self.install: InstallPhase = SERVING

        self.boot_at: datetime = config.boot_at or host.boot_time() or clock.now()
        self.identity: Identity | None = None
        if config.instance_id and config.region:
            self.identity = Identity(config.instance_id, config.region)
        self._sink: AwsSink | None = None

        self.ready = False
        self.ready_at: datetime | None = None
        self.failures = 0
        self.queue: QueueState | None = None
        self.reading = Reading()
        self.busy: bool | None = None
        self.reasons: tuple[str, ...] = ()
        self.last_activity_at: datetime | None = None

        self._last_full: float | None = None
        self._last_write: float | None = None
        self._dirty = True
        self.writes = 0
        self._metrics_since = clock.monotonic()
        self._stats = {name: _Stat() for name, _ in METRICS}

        self.work = CompletedWork(MAX_HISTORY_ITEMS)
        #: Prompts that finished since the previous poll (read from the history): activity.
        self.finished_since_poll = 0

    # ---- readings -------------------------------------------------------------------------------

    def _probe_comfy(self, now: datetime) -> None:
        self.finished_since_poll = 0  # a failed probe must not repeat the last one's activity
        try:
            if not self.ready:
                self.comfy.system_stats()
            queue = self.comfy.queue()
        except ComfyError as exc:
            self.failures += 1
            if self.failures == 1 or self.failures == DOWN_AFTER_FAILURES:
                log.log(logging.WARNING if self.ready else logging.DEBUG, "ComfyUI did not answer: %s", exc)
            if self.ready and self.failures >= DOWN_AFTER_FAILURES:
                log.warning("ComfyUI down after %d failed probes: not ready", self.failures)
                self.ready, self.ready_at, self._dirty = False, None, True
            if not self.ready:
                self.queue = None
            return
        self.failures = 0
        self.queue = queue
        if not self.ready:
            self.ready, self.ready_at, self._dirty = True, now, True
            log.info("ComfyUI ready (queue %d running, %d pending)", queue.running, queue.pending)
        self._read_history(now)

    def _read_history(self, now: datetime) -> None:
        """Prompts finished since the last poll, however short (the queue alone misses them)."""
        try:
            entries = self.comfy.history(MAX_HISTORY_ITEMS)
        except ComfyError as exc:  # readiness is the queue's answer; this reading is only skipped
            log.debug("ComfyUI history unavailable: %s", exc)
            return
        new = self.work.update(entries, now)
        self.finished_since_poll = new.finished
        if new.latest is not None and (self.last_activity_at is None or new.latest > self.last_activity_at):
            self.last_activity_at = new.latest

    def _read_install_phase(self) -> None:
        phase = read_marker(self.config.install_marker)
        if phase != self.install:
            log.info("phase %s (install started %s)", phase.name, iso(phase.started_at))
            self.install, self._dirty = phase, True

    def _read_machine(self) -> Reading:
        return Reading(
            gpu_pct=self.gpu.utilization(),
            cpu_pct=self.host.cpu_percent(),
            mem_pct=self.host.memory_percent(),
            sessions=self._scan_sessions(),
        )

    def _busy_reasons(self) -> tuple[str, ...]:
        cfg, r, q = self.config, self.reading, self.queue
        reasons = []
        if self.install.installing:
            reasons.append("ComfyUI install running (bootstrap)")
        if q is not None and q.depth > 0:
            reasons.append(f"queue {q.running} running + {q.pending} pending")
        if self.finished_since_poll:
            reasons.append(f"{self.finished_since_poll} prompt(s) finished since the last poll")
        if r.gpu_pct is not None and r.gpu_pct > cfg.gpu_busy_percent:
            reasons.append(f"GPU {r.gpu_pct:g}% > {cfg.gpu_busy_percent:g}%")
        if r.cpu_pct is not None and r.cpu_pct > cfg.cpu_busy_percent:
            reasons.append(f"CPU {r.cpu_pct:g}% > {cfg.cpu_busy_percent:g}%")
        if r.sessions.total > 0:
            kinds = ", ".join(f"{k} {v}" for k, v in r.sessions.as_dict().items() if v)
            reasons.append(f"sessions: {kinds}")
        return tuple(reasons)

    def images_completed(self) -> int:
        """Prompts that ran to the end since the agent started, from ComfyUI's history (any version,
        across ComfyUI restarts); after an agent restart, those still in the history window."""
        return self.work.completed

    # ---- the record ---------------------------------------------------------------------------------

    def record(self, now: datetime) -> dict[str, Any]:
        """The state record, as the contract writes it (autostop_contract.record_document)."""
        q, r = self.queue, self.reading
        fields = AgentRecord(
            instance_id=self.identity.instance_id if self.identity else self.config.instance_id,
            boot_at=self.boot_at,
            heartbeat_at=now,
            comfyui_ready=self.ready,
            ready_at=self.ready_at,
            queue_running=q.running if q else 0,
            queue_pending=q.pending if q else 0,
            gpu_utilization_pct=r.gpu_pct,
            sessions=r.sessions.total,
            last_activity_at=self.last_activity_at,
            images_completed=self.images_completed(),
            phase=self.install.name,
            install_started_at=self.install.started_at,
        )
        # Extra fields (readers ignore them): what the agent saw, for people debugging.
        extra = {
            "cpu_utilization_pct": r.cpu_pct,
            "memory_used_pct": r.mem_pct,
            "session_kinds": r.sessions.as_dict(),
            "activity": list(self.reasons),
            "agent_version": __version__,
        }
        return record_document(fields, extra)

    # ---- AWS ---------------------------------------------------------------------------------------------

    def _ensure_sink(self, mono: float) -> AwsSink | None:
        if self._sink is not None:
            return self._sink
        if self.identity is None:
            if not self._identity_backoff.ready(mono):
                return None
            try:
                found = self._identify()
            except ImdsError as exc:
                delay = self._identity_backoff.failed(mono)
                log.warning(
                    "instance identity unknown (IMDS: %s); retrying in %.0fs. Set INSTANCE_ID and "
                    "AWS_REGION to skip IMDS.",
                    exc,
                    delay,
                )
                return None
            self.identity = Identity(
                self.config.instance_id or found.instance_id, self.config.region or found.region
            )
            log.info("instance %s in %s", self.identity.instance_id, self.identity.region)
        self._sink = self._sink_factory(self.identity.region)
        self._restore(self._sink)
        return self._sink

    def _restore(self, sink: AwsSink) -> None:
        """After an agent restart, carry last_activity_at over from this boot's record."""
        assert self.config.agent_state_parameter is not None
        text = sink.get_record(self.config.agent_state_parameter)
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        if not isinstance(data, dict) or self.identity is None:
            return
        boot = parse_time(data.get("boot_at"))
        last = parse_time(data.get("last_activity_at"))
        if data.get("instance_id") != self.identity.instance_id or boot is None or last is None:
            return
        if abs(boot - self.boot_at) > SAME_BOOT_TOLERANCE:
            return
        if self.last_activity_at is None or last > self.last_activity_at:
            self.last_activity_at = last
            log.info("restored last_activity_at %s from this boot's record", iso(last))

    def _write(self, mono: float, now: datetime) -> None:
        due = (
            self._dirty
            or self._last_write is None
            or mono - self._last_write >= self.config.heartbeat_seconds
        )
        if not due or not self._write_backoff.ready(mono):
            return
        sink = self._ensure_sink(mono)
        if sink is None:
            return
        assert self.config.agent_state_parameter is not None
        body = encode_record(self.record(now))
        if sink.put_record(self.config.agent_state_parameter, body):
            self._write_backoff.succeeded()
            self._last_write, self._dirty = mono, False
            self.writes += 1
        else:
            delay = self._write_backoff.failed(mono)
            log.warning("state record not written; next attempt in %.0fs", delay)

    def metric_data(self) -> list[dict[str, Any]]:
        assert self.identity is not None
        dimensions = [{"Name": "InstanceId", "Value": self.identity.instance_id}]
        return [
            {
                "MetricName": name,
                "Dimensions": dimensions,
                "StatisticValues": self._stats[name].values(),
                "Unit": unit,
            }
            for name, unit in METRICS
            if self._stats[name].count
        ]

    def _publish(self, mono: float) -> None:
        if mono - self._metrics_since < self.config.metrics_seconds or not self._metrics_backoff.ready(mono):
            return
        sink = self._ensure_sink(mono)
        data = self.metric_data() if sink is not None else []
        if sink is None or not data:
            return
        if sink.put_metrics(self.config.metrics_namespace, data):
            self._metrics_backoff.succeeded()
            self._metrics_since = mono
            self._stats = {name: _Stat() for name, _ in METRICS}
        else:
            self._metrics_backoff.failed(mono)

    # ---- the loop ------------------------------------------------------------------------------------------

    def step(self) -> float:
        """One iteration; returns the seconds to wait before the next."""
        mono, now = self.clock.monotonic(), self.clock.now()
        cfg = self.config
        self._probe_comfy(now)
        full = self._last_full is None or mono - self._last_full >= cfg.poll_seconds - 1e-6
        if full:
            self._last_full = mono
            self.reading = self._read_machine()
            self._read_install_phase()

        self.reasons = self._busy_reasons()
        busy = bool(self.reasons)
        if busy:
            self.last_activity_at = now
        if busy != self.busy:
            if self.busy is not None:
                log.info("%s", f"busy: {'; '.join(self.reasons)}" if busy else "idle")
            self.busy, self._dirty = busy, True

        self._write(mono, now)
        self._publish(mono)  # the readings before this one; this one opens the next minute

        if full:
            if self.queue is not None:
                self._stats["QueueDepth"].add(float(self.queue.depth))
            if self.reading.gpu_pct is not None:
                self._stats["GPUUtilization"].add(self.reading.gpu_pct)
            self._stats["ActiveSessions"].add(float(self.reading.sessions.total))
            decision = self.self_stop.decide(
                mono=mono,
                uptime=self.host.uptime_seconds(),
                busy=busy,
                sessions=self.reading.sessions.total,
            )
            if not decision.stop:
                decision = self.install_guard.decide(
                    mono=mono,
                    installing=self.install.installing,
                    uptime=self.host.uptime_seconds(),
                    sessions=self.reading.sessions.total,
                )
            if decision.stop:
                self.self_stop.fire(mono, decision)
        return cfg.poll_seconds if self.ready else cfg.startup_poll_seconds

    def run(self, should_stop: Callable[[], bool], wait: Callable[[float], None] | None = None) -> None:
        """Step until ``should_stop()``; between steps ``wait`` (default: the clock's sleep), which the
        service makes return at once on SIGTERM."""
        cfg = self.config
        pause = wait or self.clock.sleep
        log.info(
            "gpu-autostop-agent %s: ComfyUI %s, record %s, poll %gs, heartbeat %gs, self-stop %s",
            __version__,
            cfg.comfyui_url,
            cfg.agent_state_parameter,
            cfg.poll_seconds,
            cfg.heartbeat_seconds,
            f"after {cfg.self_stop_minutes:g} idle minutes" if cfg.self_stop_enabled else "off",
        )
        while not should_stop():
            started = self.clock.monotonic()
            try:
                interval = self.step()
            except Exception:  # a bug must not end the agent: log it and keep the cadence
                log.exception("unexpected error in the poll loop; continuing")
                interval = cfg.poll_seconds
            deadline = started + interval
            while not should_stop():
                left = deadline - self.clock.monotonic()
                if left <= 0:
                    break
                pause(min(left, 1.0))
        log.info("stopping")
        self.farewell()
        self.gpu.close()

    def farewell(self) -> None:
        """On a clean stop (the machine shutting down, or the unit restarting), write one last record
        saying ComfyUI is no longer known to be ready, so status never reports a dying boot as ready.
        Best effort: one attempt, no retry, nothing written if no record was written before."""
        if self._sink is None or self._last_write is None or self.config.agent_state_parameter is None:
            return
        self.ready, self.ready_at = False, None
        body = encode_record(self.record(self.clock.now()))
        if self._sink.put_record(self.config.agent_state_parameter, body):
            self.writes += 1

    def once(self) -> dict[str, Any]:
        """One reading for ``--once``: nothing is written to AWS."""
        self.host.cpu_percent()  # first CPU sample; the second, half a second later, gives a rate
        self.clock.sleep(0.5)
        self._probe_comfy(self.clock.now())
        self.reading = self._read_machine()
        self._read_install_phase()
        self.reasons = self._busy_reasons()
        now = self.clock.now()
        if self.reasons:
            self.last_activity_at = now
        if self.identity is None:
            try:
                found = self._identify()
                self.identity = Identity(
                    self.config.instance_id or found.instance_id, self.config.region or found.region
                )
            except ImdsError as exc:
                log.warning("instance identity unknown (IMDS: %s)", exc)
        return self.record(now)
