"""Compare stop policies on a trace of jobs: ``gpu-autostop-tools simulate --trace FILE.csv [--json]``.

A trace is a CSV file with the header ``timestamp,duration_s``: the UTC ISO-8601 time a
job arrives (n8n calls start, then queues the prompt) and how long it keeps the GPU busy.
The trace is replayed against one GPU instance whose life is modelled (``Timings``):
a start takes ~30 s to running and ComfyUI answers ~60 s later; a stop takes ~45 s;
ComfyUI runs one job at a time, first come first served; a job that arrives while the
instance is stopped or stopping waits for a boot.

Policies, side by side:

* ``always-on``: never stops (the bill without this project);
* ``cloudwatch-cpu-alarm``: the common do-it-yourself setup, one CloudWatch alarm on basic
  5-minute EC2 metrics, CPUUtilization Average < 5 % for 3 periods -> EC2 stop action. It
  cannot see the GPU: a long render whose CPU is low is stopped under the job;
* ``autostop-default`` and ``autostop-aggressive``: this project's stop function. Every
  decision goes through the real ``autostop.idle.decide`` with an agent record built as
  the agent writes it (every heartbeat and at once on busy/idle changes), the lease of
  each start request, the EventBridge re-check every few minutes and the composite idle
  alarm (1-minute agent metrics, 5-minute EC2 metrics, a few minutes of CloudWatch delay).

The figures per policy: billed GPU hours, USD per 730-hour month (the calculator's bill:
instance hours plus storage, IP, monitoring and control plane), cold starts, the p50/p95
wait of jobs that waited for a boot, billed hours without a job on the GPU, and jobs
whose machine was stopped under them (lost; they are not retried).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import math
import statistics
import sys
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from autostop_contract import AgentRecord, parse_time

from autostop.idle import METRIC_PERIOD_SECONDS, Ec2Metrics, StopPolicy, decide

INF = math.inf
PERIOD = float(METRIC_PERIOD_SECONDS)
JSON_KEYS = (
    "policy",
    "billed_hours",
    "cost_usd",
    "cold_starts",
    "wait_p50_s",
    "wait_p95_s",
    "idle_hours",
    "stops_under_job",
    "tail_p50_min",
    "tail_max_min",
    "usd_per_image",
)


class TraceError(ValueError):
    """The trace file is unreadable or malformed; the message names the file and the line."""


@dataclass(frozen=True)
class Job:
    arrival: float  # POSIX seconds, UTC
    duration: float


def load_trace(path: str | Path) -> list[Job]:
    """Jobs sorted by arrival. Header ``timestamp,duration_s``; times UTC ISO-8601."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise TraceError(f"cannot read trace {path}: {exc.strerror or exc}") from None
    if not rows or [c.strip() for c in rows[0]] != ["timestamp", "duration_s"]:
        raise TraceError(f"{path}: the first line must be the header 'timestamp,duration_s'")
    jobs = []
    for number, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            raise TraceError(f"{path}:{number}: expected 2 columns, got {len(row)}")
        moment = parse_time(row[0].strip())
        if moment is None:
            raise TraceError(
                f"{path}:{number}: timestamp {row[0]!r} is not ISO-8601 (e.g. 2026-11-02T09:15:00Z)"
            )
        try:
            duration = float(row[1])
        except ValueError:
            raise TraceError(f"{path}:{number}: duration_s {row[1]!r} is not a number") from None
        if not math.isfinite(duration) or duration <= 0 or duration > 86_400:
            raise TraceError(f"{path}:{number}: duration_s must be more than 0 and at most 86400")
        jobs.append(Job(moment.timestamp(), duration))
    if not jobs:
        raise TraceError(f"{path}: no jobs")
    jobs.sort(key=lambda j: j.arrival)
    return jobs


@dataclass(frozen=True)
class Timings:
    """The modelled world. Every figure can be changed; the defaults are typical for g4dn/g5."""

    boot_to_running_s: float = 30.0
    running_to_ready_s: float = 60.0  # ComfyUI answers ~90 s after the start request
    stopping_s: float = 45.0
    agent_start_s: float = 20.0  # the agent's first record after the OS is up
    heartbeat_s: float = 60.0
    idle_cpu_pct: float = 1.0
    boot_cpu_pct: float = 40.0  # cloud-init, drivers, ComfyUI loading models
    boot_cpu_s: float = 120.0
    #: While the GPU renders: the Python thread mostly waits on the GPU (4 vCPUs: ~4 %).
    job_cpu_pct: float = 4.0
    #: Prompt encoding / model switching at the start of each job.
    job_spike_cpu_pct: float = 40.0
    job_spike_s: float = 8.0
    #: Images sent back to n8n at the end of a job (NetworkOut).
    job_network_bytes: float = 1_500_000.0
    #: Basic-monitoring datapoints reach CloudWatch a few minutes after their period.
    ec2_metric_delay_s: float = 180.0
    agent_metric_delay_s: float = 60.0

    @property
    def boot_s(self) -> float:
        return self.boot_to_running_s + self.running_to_ready_s


# --- policies ---------------------------------------------------------------------------------------


class Policy(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    def next_check(self, run: Run, after: float) -> float: ...

    def should_stop(self, run: Run, now: float) -> bool: ...


@dataclass(frozen=True)
class AlwaysOn:
    name: str = "always-on"

    @property
    def description(self) -> str:
        return "never stops"

    def next_check(self, run: Run, after: float) -> float:
        return INF

    def should_stop(self, run: Run, now: float) -> bool:
        return False


@dataclass(frozen=True)
class CpuAlarm:
    """One CloudWatch alarm: CPUUtilization Average below a threshold for N basic 5-minute periods."""

    name: str = "cloudwatch-cpu-alarm"
    threshold_pct: float = 5.0
    periods: int = 3

    @property
    def description(self) -> str:
        return (
            f"CPU Average < {self.threshold_pct:g}% for {self.periods} x 5 min (basic metrics) -> EC2 stop; "
            "blind to the GPU"
        )

    def next_check(self, run: Run, after: float) -> float:
        # The alarm evaluates when a period's datapoint lands: period end + delay.
        delay = run.timings.ec2_metric_delay_s
        period_end = (math.floor((after - delay) / PERIOD) + 1) * PERIOD
        first_end = math.floor(run.session.running_at / PERIOD) * PERIOD + PERIOD
        return max(period_end, first_end) + delay

    def should_stop(self, run: Run, now: float) -> bool:
        end = math.floor((now - run.timings.ec2_metric_delay_s) / PERIOD) * PERIOD
        first = math.floor(run.session.running_at / PERIOD) * PERIOD
        if end - self.periods * PERIOD < first:
            return False  # not enough datapoints since this start
        for n in range(self.periods):
            p_end = end - n * PERIOD
            if run.cpu_average(p_end - PERIOD, p_end) >= self.threshold_pct:
                return False
        return True


@dataclass(frozen=True)
class Autostop:
    """This project's stop function, deciding with ``autostop.idle.decide``."""

    name: str
    policy: StopPolicy
    recheck_s: float
    composite_alarm: bool = True

    @property
    def description(self) -> str:
        return (
            f"idle {self.policy.idle_minutes:g} min, boot grace {self.policy.boot_grace_minutes:g} min, "
            f"re-check every {self.recheck_s / 60:g} min"
            + (", composite idle alarm" if self.composite_alarm else "")
        )

    def next_check(self, run: Run, after: float) -> float:
        tick = (math.floor(after / self.recheck_s) + 1) * self.recheck_s
        alarm = self.alarm_time(run) if self.composite_alarm else None
        return min(tick, alarm) if alarm is not None and alarm > after else tick

    def alarm_time(self, run: Run) -> float | None:
        """When the composite idle alarm would invoke the stop function in this idle stretch."""
        if run.busy or run.alarm_fired_stretch == run.stretch:
            return None
        s, t = run.session, run.timings
        idle = self.policy.idle_minutes
        last_end = s.execs[-1][1] if s.execs else None
        # Agent metrics (QueueDepth, GPUUtilization), 1-minute periods.
        agent_busy_end = last_end if last_end is not None else s.running_at + t.agent_start_s
        agent = _ceil(agent_busy_end, 60) + max(1, math.ceil(idle)) * 60 + t.agent_metric_delay_s
        # EC2 CPU (per-period maximum) and NetworkOut, basic 5-minute periods.
        cpu_busy_end = max(s.running_at + t.boot_cpu_s, (s.execs[-1][0] + t.job_spike_s) if s.execs else -INF)
        first = math.floor(s.running_at / PERIOD) * PERIOD
        quiet_from = max(first, _ceil(cpu_busy_end, PERIOD))
        if last_end is not None:
            quiet_from = max(quiet_from, math.floor(last_end / PERIOD) * PERIOD + PERIOD)
        ec2 = quiet_from + max(1, math.ceil(idle / 5)) * PERIOD + t.ec2_metric_delay_s
        return _ceil(max(agent, ec2), 60)

    def should_stop(self, run: Run, now: float) -> bool:
        alarm = self.alarm_time(run) if self.composite_alarm else None
        if alarm is not None and alarm <= now:
            run.alarm_fired_stretch = run.stretch
        at, launch = _dt(now), _dt(run.session.launch)
        lease = _dt(run.lease_at) if run.lease_at is not None else None
        record = run.agent_record(now)
        verdict = decide(
            now=at, state="running", launch_time=launch, lease_at=lease, record=record, policy=self.policy
        )
        if verdict.code == "no_metrics":  # as the stop function does when the agent is silent
            metrics = run.ec2_metrics(now, self.policy.metric_window_minutes)
            verdict = decide(
                now=at,
                state="running",
                launch_time=launch,
                lease_at=lease,
                record=record,
                policy=self.policy,
                metrics=metrics,
            )
        return verdict.stop


def deployed_policy(idle_minutes: float | None = None) -> Autostop:
    """The stop function as Terraform deploys it by default, with ``idle_minutes`` changed if given."""
    if idle_minutes is None or idle_minutes == StopPolicy().idle_minutes:
        return Autostop("autostop-default", StopPolicy(), recheck_s=300.0)
    return Autostop(f"autostop-idle-{idle_minutes:g}", StopPolicy(idle_minutes=idle_minutes), recheck_s=300.0)


def default_policies() -> list[Policy]:
    return [
        AlwaysOn(),
        CpuAlarm(),
        deployed_policy(),
        Autostop(
            "autostop-aggressive",
            StopPolicy(idle_minutes=3.0, boot_grace_minutes=3.0),
            recheck_s=60.0,
        ),
    ]


def _ceil(value: float, step: float) -> float:
    return math.ceil(value / step) * step


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


# --- the replay -------------------------------------------------------------------------------------


@dataclass
class Session:
    launch: float
    running_at: float
    ready_at: float
    #: (start, end) of every job executed in this session, in order (ends cut short by a stop).
    execs: list[tuple[float, float]] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    images: int = 0


@dataclass
class Run:
    jobs: list[Job]
    policy: Policy
    timings: Timings
    span_start: float
    span_end: float
    state: str = "stopped"  # stopped, pending, running, stopping
    ready: bool = False  # ComfyUI answers (this boot)
    session: Session = field(default_factory=lambda: Session(-INF, -INF, -INF))
    stopped_at: float = -INF
    lease_at: float | None = None
    queue: deque[Job] = field(default_factory=deque)
    current: tuple[Job, float, float] | None = None
    last_change: float = -INF
    stretch: int = 0
    alarm_fired_stretch: int = -1
    # results
    billed_s: float = 0.0
    busy_s: float = 0.0
    cold_starts: int = 0
    waits: list[float] = field(default_factory=list)
    stops_under_job: int = 0
    #: Per stop: seconds billed after the last job ended or the last start request, if later.
    tails: list[float] = field(default_factory=list)
    completed: int = 0

    @property
    def busy(self) -> bool:
        return self.current is not None or bool(self.queue)

    # --- what the agent and CloudWatch see --------------------------------------------------
    def agent_record(self, now: float) -> AgentRecord | None:
        """The record as the agent last wrote it: every heartbeat, and at once on any change."""
        s, t = self.session, self.timings
        agent_up = s.running_at + t.agent_start_s
        if now < agent_up:
            return None
        beats = math.floor((now - agent_up) / t.heartbeat_s)
        written = max(agent_up + beats * t.heartbeat_s, min(self.last_change, now))
        busy = self.busy
        if busy:
            activity = written
        elif s.execs:
            activity = s.execs[-1][1]
        else:
            activity = min(s.running_at + t.boot_cpu_s, written)
        ready = written >= s.ready_at
        return AgentRecord(
            instance_id=None,
            boot_at=_dt(s.running_at),
            heartbeat_at=_dt(written),
            comfyui_ready=ready,
            ready_at=_dt(s.ready_at) if ready else None,
            queue_running=1 if self.current else 0,
            queue_pending=len(self.queue),
            gpu_utilization_pct=95.0 if self.current else 0.0,
            sessions=0,
            last_activity_at=_dt(activity),
            images_completed=s.images,
        )

    def _execs_between(self, a: float, b: float) -> list[tuple[float, float]]:
        s = self.session
        i = bisect.bisect_right(s.ends, a)
        found = []
        while i < len(s.execs) and s.execs[i][0] < b:
            found.append(s.execs[i])
            i += 1
        if self.current and self.current[1] < b and self.current[2] > a:  # the job on the GPU now
            found.append((self.current[1], self.current[2]))
        return found

    def cpu_average(self, a: float, b: float) -> float:
        """Average CPU % over the running part of [a, b)."""
        s, t = self.session, self.timings
        a = max(a, s.running_at)
        if b <= a:
            return 0.0
        total = t.idle_cpu_pct * (b - a)
        total += _overlap(a, b, s.running_at, s.running_at + t.boot_cpu_s) * (t.boot_cpu_pct - t.idle_cpu_pct)
        for start, end in self._execs_between(a, b):
            spike_end = min(start + t.job_spike_s, end)
            total += _overlap(a, b, start, spike_end) * (t.job_spike_cpu_pct - t.idle_cpu_pct)
            total += _overlap(a, b, spike_end, end) * (t.job_cpu_pct - t.idle_cpu_pct)
        return total / (b - a)

    def ec2_metrics(self, now: float, window_minutes: float) -> Ec2Metrics:
        """What the stop function reads from CloudWatch when the agent is silent (5-minute periods)."""
        delay = self.timings.ec2_metric_delay_s
        end = math.floor((now - delay) / PERIOD) * PERIOD
        start = max(now - window_minutes * 60, math.floor(self.session.running_at / PERIOD) * PERIOD)
        cpus, nets = [], []
        p = end - PERIOD
        while p >= start - 1e-9:
            cpus.append(self.cpu_average(p, p + PERIOD))
            sent = sum(1 for s, e in self._execs_between(p, p + PERIOD) if p <= e < p + PERIOD)
            nets.append(sent * self.timings.job_network_bytes + 50_000)
            p -= PERIOD
        return Ec2Metrics(max(cpus) if cpus else None, max(nets) if nets else None, len(cpus) * 2)

    # --- the instance ---------------------------------------------------------------------------
    def _start(self, now: float, cold: bool = True) -> None:
        t = self.timings
        self.cold_starts += 1 if cold else 0
        running = now + t.boot_to_running_s
        self.session = Session(now, running, running + t.running_to_ready_s)
        self.state = "pending"
        self.ready = False
        self.stretch += 1

    def _begin_job(self, now: float) -> None:
        job = self.queue.popleft()
        if job.arrival < self.session.ready_at:
            self.waits.append(self.session.ready_at - job.arrival)
        self.current = (job, now, now + job.duration)
        self.last_change = now

    def _stop(self, now: float) -> None:
        if not self.busy:
            last_end = self.session.execs[-1][1] if self.session.execs else -INF
            last_request = self.lease_at if self.lease_at is not None else -INF
            self.tails.append(max(now - max(last_end, last_request, self.session.running_at), 0.0))
        else:
            self.tails.append(0.0)  # stopped under a job: no idle tail, a lost job (counted below)
        killed = len(self.queue) + (1 if self.current else 0)
        self.stops_under_job += killed
        if self.current:
            start = self.current[1]
            self.busy_s += now - start
            self.session.execs.append((start, now))
            self.session.ends.append(now)
            self.current = None
        self.queue.clear()
        self.billed_s += max(now - self.session.running_at, 60.0)
        self.state = "stopping"
        self.ready = False
        self.stopped_at = now + self.timings.stopping_s

    def _next_internal(self) -> float:
        s = self.session
        if self.state == "pending":
            return s.running_at
        if self.state == "running":
            if not self.ready:
                return s.ready_at
            return self.current[2] if self.current else INF
        if self.state == "stopping":
            return self.stopped_at
        return INF

    def _internal(self, now: float) -> None:
        s = self.session
        if self.state == "pending":
            self.state = "running"
            self.last_change = now
            return
        if self.state == "stopping":
            self.state = "stopped"
            if self.queue:  # start requests arrived while stopping: start waits for stopped, then starts
                self._start(now)
            return
        if not self.ready:  # ComfyUI answers
            self.ready = True
            self.last_change = now
        elif self.current is not None:  # the job on the GPU is done
            _, start, end = self.current
            self.busy_s += end - start
            s.execs.append((start, end))
            s.ends.append(end)
            s.images += 1
            self.completed += 1
            self.current = None
            self.last_change = now
            if not self.queue:
                self.stretch += 1
        if self.queue and self.current is None:
            self._begin_job(now)

    def _arrive(self, job: Job) -> None:
        now = job.arrival
        self.lease_at = now
        self.queue.append(job)
        if self.state == "stopped":
            self._start(now)
        elif self.state == "running":
            self.last_change = now
            if self.current is None and self.ready:
                self._begin_job(now)

    def replay(self) -> None:
        always_on = isinstance(self.policy, AlwaysOn)
        if always_on:  # already up when the trace begins
            self._start(self.span_start - self.timings.boot_s, cold=False)
            self.state, self.ready = "running", True
            self.last_change = self.span_start
        i, n = 0, len(self.jobs)
        now = -INF
        steps = 0
        while True:
            steps += 1
            if steps > 50_000_000:  # pragma: no cover - a policy that never advances
                raise RuntimeError(f"{self.policy.name}: the replay does not advance at {_dt(now)}")
            internal = self._next_internal()
            arrival = self.jobs[i].arrival if i < n else INF
            check = self.policy.next_check(self, now) if self.state == "running" else INF
            soonest = min(internal, arrival, check)
            if soonest == INF:
                break
            now = soonest
            if internal == soonest:
                self._internal(now)
            elif arrival == soonest:
                self._arrive(self.jobs[i])
                i += 1
            elif self.policy.should_stop(self, now):
                self._stop(now)
        if always_on:
            end = max(self.span_end, now)
            self.billed_s = end - self.span_start


@dataclass(frozen=True)
class Result:
    policy: str
    description: str
    billed_hours: float
    cost_usd: float
    cold_starts: int
    waited_jobs: int
    wait_p50_s: float
    wait_p95_s: float
    idle_hours: float
    stops_under_job: int
    #: Minutes billed after the last job (or start request) per gap; None where nothing ever stops.
    tail_p50_min: float | None
    tail_max_min: float | None
    #: The trace's USD (USD/month x the trace's months) / jobs completed; None if none completed.
    usd_per_image: float | None

    def as_json(self) -> dict[str, object]:
        return {key: getattr(self, key) for key in JSON_KEYS}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _tails(tails_s: list[float]) -> tuple[float | None, float | None]:
    if not tails_s:
        return None, None
    return round(statistics.median(tails_s) / 60, 1), round(max(tails_s) / 60, 1)


def _per_image(cost_usd: float, months: float, completed: int) -> float | None:
    return round(cost_usd * months / completed, 4) if completed else None


@dataclass(frozen=True)
class Pricing:
    """USD for the simulated hours: the instance price, what each running hour adds, fixed costs."""

    hourly_usd: float
    extras_per_hour_usd: float
    fixed_monthly_usd: float
    label: str


def pricing_for(instance_type: str, region: str, market: str, prices_file: str | None = None) -> Pricing:
    from autostop import cost, pricing

    book = pricing.load_price_book(prices_file)
    hourly = book.instance(instance_type, region, market)
    return Pricing(
        hourly.usd,
        cost.running_extras_per_hour(book, region),
        cost.fixed_monthly_usd(book, region),
        f"{instance_type} {market} in {region} (${hourly.usd:g}/h)",
    )


def trace_span(jobs: list[Job]) -> tuple[float, float]:
    """Whole UTC days from the first arrival to the end of the last job."""
    day = 86_400.0
    start = math.floor(jobs[0].arrival / day) * day
    end = max(math.ceil(max(j.arrival + j.duration for j in jobs) / day) * day, start + day)
    return start, end


def simulate(
    jobs: list[Job],
    policy: Policy,
    prices: Pricing,
    timings: Timings | None = None,
) -> Result:
    timings = timings or Timings()
    start, end = trace_span(jobs)
    run = Run(jobs, policy, timings, start, end)
    run.replay()
    billed_h = run.billed_s / 3600
    months = (end - start) / 3600 / 730
    cost = billed_h * (prices.hourly_usd + prices.extras_per_hour_usd) / months + prices.fixed_monthly_usd
    tail_p50, tail_max = _tails(run.tails)
    return Result(
        policy=policy.name,
        description=policy.description,
        billed_hours=round(billed_h, 2),
        cost_usd=round(cost, 2),
        cold_starts=run.cold_starts,
        waited_jobs=len(run.waits),
        wait_p50_s=round(_percentile(run.waits, 0.50), 1),
        wait_p95_s=round(_percentile(run.waits, 0.95), 1),
        idle_hours=round(max(run.billed_s - run.busy_s, 0.0) / 3600, 2),
        stops_under_job=run.stops_under_job,
        tail_p50_min=tail_p50,
        tail_max_min=tail_max,
        usd_per_image=_per_image(round(cost, 2), months, run.completed),
    )


# --- renting instead: a serverless GPU billed per second ----------------------------------------------

#: Where the serverless defaults come from (read 2026-12-01).
SERVERLESS_SOURCES = (
    "price: RunPod Serverless pricing, https://docs.runpod.io/serverless/pricing, 'A4000, A4500, "
    "RTX 4000 | 16 GB | $0.00016' flex cost per second, 'charged by the second, with partial seconds "
    "rounded up'; 'Billing starts when the system signals a worker to wake up and ends when the worker "
    "is fully stopped'",
    "idle timeout: https://docs.runpod.io/pricing/serverless, 'Idle timeout duration: the time a worker "
    "remains active (running) after completing a request ... (default: 5 seconds)'",
    "storage: the same pricing page, network volumes '$0.07 per GB per month for the first 1TB'; 20 GB "
    "(one SDXL checkpoint of 6.9 GB, its VAE, a few LoRAs) is an assumption",
    "cold start: an assumption, not measured here: 30 s to start a ComfyUI worker and load a checkpoint "
    "into VRAM. RunPod's FlashBoot post (https://blog.runpod.io/introducing-flashboot-1-second-"
    "serverless-cold-start/) reports 0.56-42 s on a busy Whisper endpoint; a rarely used endpoint "
    "gets fewer fast starts",
    "speed: an assumption, not measured here: an RTX A4000 (Ampere) runs a T4's job in 0.7 of the time; "
    "measure your own workflow on both and pass --serverless-speed",
)


@dataclass(frozen=True)
class Serverless:
    """A serverless GPU endpoint that scales workers with load (flex workers, scale to zero)."""

    name: str = "serverless-runpod-flex-16gb"
    usd_per_s: float = 0.00016
    cold_start_s: float = 30.0
    idle_s: float = 5.0
    storage_usd_month: float = 20 * 0.07
    #: A job's duration on the serverless GPU / its duration in the trace (the instance's GPU).
    speed: float = 0.7

    def __post_init__(self) -> None:
        for name in ("usd_per_s", "cold_start_s", "idle_s", "storage_usd_month"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"serverless {name} must be a finite number >= 0; got {value!r}")
        if not math.isfinite(self.speed) or not 0 < self.speed <= 100:
            raise ValueError(f"serverless speed must be more than 0 and at most 100; got {self.speed!r}")

    @property
    def description(self) -> str:
        return (
            f"${self.usd_per_s:g}/s per worker, cold start {self.cold_start_s:g} s, idle {self.idle_s:g} s, "
            f"storage ${self.storage_usd_month:.2f}/month, speed x{self.speed:g}"
        )


@dataclass
class _Worker:
    started: float
    free_at: float


def simulate_serverless(jobs: list[Job], endpoint: Serverless) -> Result:
    """Replay the trace on per-second workers.

    Each job takes the warm idle worker freed last, if one is still inside its idle timeout; else a new
    worker starts (a cold start: billed, and the job waits for it). A worker bills from its start to
    its last job's end plus the idle timeout, rounded up to the second. There is no limit on workers
    (RunPod's max workers per endpoint is not modelled) and no queue.
    """
    start, end = trace_span(jobs)
    months = (end - start) / 3600 / 730
    workers: list[_Worker] = []
    billed = busy = 0.0
    spans = cold = 0
    waits: list[float] = []

    def close(worker: _Worker) -> float:
        return math.ceil(worker.free_at + endpoint.idle_s - worker.started - 1e-9)

    for job in jobs:
        now = job.arrival
        for worker in [w for w in workers if w.free_at + endpoint.idle_s < now]:
            billed += close(worker)
            workers.remove(worker)
        warm = [w for w in workers if w.free_at <= now]
        duration = job.duration * endpoint.speed
        busy += duration
        if warm:
            worker = max(warm, key=lambda w: w.free_at)
            worker.free_at = now + duration
        else:
            cold += 1
            spans += 1
            waits.append(endpoint.cold_start_s)
            workers.append(_Worker(now, now + endpoint.cold_start_s + duration))
    billed += sum(close(w) for w in workers)
    cost = round(billed * endpoint.usd_per_s / months + endpoint.storage_usd_month, 2)
    tail = round(endpoint.idle_s / 60, 1)
    return Result(
        policy=endpoint.name,
        description=endpoint.description,
        billed_hours=round(billed / 3600, 2),
        cost_usd=cost,
        cold_starts=cold,
        waited_jobs=len(waits),
        wait_p50_s=round(_percentile(waits, 0.50), 1),
        wait_p95_s=round(_percentile(waits, 0.95), 1),
        idle_hours=round(max(billed - busy, 0.0) / 3600, 2),
        stops_under_job=0,
        tail_p50_min=tail,
        tail_max_min=tail,
        usd_per_image=_per_image(cost, months, len(jobs)),
    )


def compare(
    jobs: list[Job],
    prices: Pricing,
    timings: Timings | None = None,
    policies: list[Policy] | None = None,
    serverless: Serverless | None = None,
) -> list[Result]:
    """Every policy on one instance, then (if given) the serverless endpoint on the same trace."""
    results = [simulate(jobs, p, prices, timings) for p in (policies or default_policies())]
    if serverless is not None:
        results.append(simulate_serverless(jobs, serverless))
    return results


# --- which idle_minutes: the recommendation -----------------------------------------------------------

#: The idle_minutes searched by --recommend (a grid: a month replays in about half a second).
RECOMMEND_IDLE_MINUTES = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0, 30.0, 45.0, 60.0)


@dataclass(frozen=True)
class Bounds:
    max_wait_p95_s: float = 180.0
    max_cold_starts_per_day: float = 6.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.max_wait_p95_s) or self.max_wait_p95_s <= 0:
            raise ValueError(f"--max-wait-p95-s must be a number above 0; got {self.max_wait_p95_s!r}")
        if not math.isfinite(self.max_cold_starts_per_day) or self.max_cold_starts_per_day < 0:
            raise ValueError(
                f"--max-cold-starts-per-day must be a number >= 0; got {self.max_cold_starts_per_day!r}"
            )


@dataclass(frozen=True)
class Recommendation:
    idle_minutes: float | None  # None: no setting on the grid stays within the bounds
    result: Result | None
    cold_starts_per_day: float | None
    default_idle_minutes: float
    default: Result
    bounds: Bounds

    @property
    def saves_usd_month(self) -> float | None:
        return None if self.result is None else round(self.default.cost_usd - self.result.cost_usd, 2)

    def as_json(self) -> dict[str, object]:
        return {
            "idle_minutes": self.idle_minutes,
            "usd_month": None if self.result is None else self.result.cost_usd,
            "default_idle_minutes": self.default_idle_minutes,
            "default_usd_month": self.default.cost_usd,
            "saves_usd_month": self.saves_usd_month,
            "cold_starts_per_day": self.cold_starts_per_day,
            "wait_p95_s": None if self.result is None else self.result.wait_p95_s,
            "max_wait_p95_s": self.bounds.max_wait_p95_s,
            "max_cold_starts_per_day": self.bounds.max_cold_starts_per_day,
        }


def recommend(
    jobs: list[Job],
    prices: Pricing,
    bounds: Bounds,
    timings: Timings | None = None,
    grid: tuple[float, ...] = RECOMMEND_IDLE_MINUTES,
) -> Recommendation:
    """The cheapest idle_minutes on the grid with wait p95 and cold starts a day within the bounds and
    no stop under a job (ties: the longer idle time, fewer cold starts)."""
    start, end = trace_span(jobs)
    days = (end - start) / 86_400
    default_idle = StopPolicy().idle_minutes
    best: tuple[float, Result] | None = None
    default: Result | None = None
    for idle_minutes in sorted({*grid, default_idle}):
        result = simulate(jobs, deployed_policy(idle_minutes), prices, timings)
        if idle_minutes == default_idle:
            default = result
        ok = (
            result.stops_under_job == 0
            and result.wait_p95_s <= bounds.max_wait_p95_s
            and result.cold_starts / days <= bounds.max_cold_starts_per_day
        )
        if ok and (best is None or result.cost_usd <= best[1].cost_usd):
            best = (idle_minutes, result)
    assert default is not None
    if best is None:
        return Recommendation(None, None, None, default_idle, default, bounds)
    return Recommendation(
        best[0], best[1], round(best[1].cold_starts / days, 2), default_idle, default, bounds
    )


def render_recommendation(path: str, rec: Recommendation) -> str:
    b = rec.bounds
    within = (
        f"wait p95 <= {b.max_wait_p95_s:g} s, <= {b.max_cold_starts_per_day:g} cold starts a day "
        "and no stop under a job"
    )
    if rec.result is None or rec.idle_minutes is None:
        return (
            f"{path}: no idle_minutes in {RECOMMEND_IDLE_MINUTES[0]:g}..{RECOMMEND_IDLE_MINUTES[-1]:g} "
            f"keeps {within}; keep idle_minutes = {rec.default_idle_minutes:g} (${rec.default.cost_usd:.2f}"
            "/month) or loosen the bounds."
        )
    return "\n".join(
        [
            f"{path}: idle_minutes = {rec.idle_minutes:g} is the cheapest setting with {within}:",
            f"  ${rec.result.cost_usd:.2f}/month vs ${rec.default.cost_usd:.2f} with the default "
            f"idle_minutes = {rec.default_idle_minutes:g} (saves ${rec.saves_usd_month:.2f}/month); "
            f"{rec.cold_starts_per_day:g} cold starts a day, wait p95 {rec.result.wait_p95_s:g} s, "
            f"billed tail p50 {rec.result.tail_p50_min} min.",
            "  terraform.tfvars:",
            f"    idle_minutes = {rec.idle_minutes:g}",
        ]
    )


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render(path: str, jobs: list[Job], prices: Pricing, results: list[Result]) -> str:
    start, end = trace_span(jobs)
    busy = sum(j.duration for j in jobs) / 3600
    days = (end - start) / 86_400
    out = [
        f"{path}: {len(jobs):,} jobs, {busy:.1f} GPU hours of work over {days:.0f} days "
        f"({_dt(start):%Y-%m-%d} to {_dt(end):%Y-%m-%d}); {prices.label}",
        f"{'policy':<27} {'billed h':>9} {'USD/month':>10} {'cold starts':>11} {'waited':>7} "
        f"{'wait p50 s':>10} {'wait p95 s':>10} {'idle h':>8} {'stops under job':>15} "
        f"{'tail p50 min':>12} {'tail max min':>12} {'USD/image':>9}",
    ]
    for r in results:
        out.append(
            f"{r.policy:<27} {r.billed_hours:>9.1f} {r.cost_usd:>10.2f} {r.cold_starts:>11} "
            f"{r.waited_jobs:>7} {r.wait_p50_s:>10.1f} {r.wait_p95_s:>10.1f} {r.idle_hours:>8.1f} "
            f"{r.stops_under_job:>15} {_cell(r.tail_p50_min, '.1f'):>12} {_cell(r.tail_max_min, '.1f'):>12} "
            f"{_cell(r.usd_per_image, '.3f'):>9}"
        )
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpu-autostop-tools simulate",
        description="Replay a job trace through stop policies and compare hours, dollars and waits.",
    )
    parser.add_argument(
        "--trace", action="append", required=True, help="CSV 'timestamp,duration_s' (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON (one trace only)")
    parser.add_argument("--instance-type", default="g4dn.xlarge")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--market", choices=("on-demand", "spot"), default="on-demand")
    parser.add_argument("--prices", help="JSON price overrides (see autostop.pricing)")
    parser.add_argument(
        "--job-cpu-pct", type=float, help=f"CPU while a job renders (default {Timings.job_cpu_pct})"
    )
    parser.add_argument("--boot-seconds", type=float, help="start request to ComfyUI ready (default 90)")
    sv = parser.add_argument_group("the serverless row (defaults: RunPod flex 16 GB, see docs/cost.md)")
    sv.add_argument("--serverless-usd-per-s", type=float, default=Serverless.usd_per_s)
    sv.add_argument("--serverless-cold-start-s", type=float, default=Serverless.cold_start_s)
    sv.add_argument("--serverless-idle-s", type=float, default=Serverless.idle_s, help="idle timeout")
    sv.add_argument(
        "--serverless-storage-usd",
        type=float,
        default=Serverless.storage_usd_month,
        help="USD a month for the models' network volume (default 20 GB x $0.07)",
    )
    sv.add_argument(
        "--serverless-speed",
        type=float,
        default=Serverless.speed,
        help="job duration there / in the trace (default 0.7)",
    )
    rec = parser.add_argument_group("--recommend: the cheapest idle_minutes within bounds")
    rec.add_argument("--recommend", action="store_true", help="search idle_minutes 1..60 per trace")
    rec.add_argument("--max-wait-p95-s", type=float, default=Bounds.max_wait_p95_s)
    rec.add_argument("--max-cold-starts-per-day", type=float, default=Bounds.max_cold_starts_per_day)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.json and len(args.trace) != 1:
        parser.error("--json takes exactly one --trace")
    from autostop.pricing import PriceFileError, PriceUnknown

    try:
        serverless = Serverless(
            usd_per_s=args.serverless_usd_per_s,
            cold_start_s=args.serverless_cold_start_s,
            idle_s=args.serverless_idle_s,
            storage_usd_month=args.serverless_storage_usd,
            speed=args.serverless_speed,
        )
        bounds = Bounds(args.max_wait_p95_s, args.max_cold_starts_per_day)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        prices = pricing_for(args.instance_type, args.region, args.market, args.prices)
    except (PriceUnknown, PriceFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    timings = Timings()
    if args.job_cpu_pct is not None:
        timings = _replace(timings, job_cpu_pct=args.job_cpu_pct)
    if args.boot_seconds is not None:
        if args.boot_seconds <= timings.boot_to_running_s:
            parser.error(f"--boot-seconds must be more than {timings.boot_to_running_s:g}")
        timings = _replace(timings, running_to_ready_s=args.boot_seconds - timings.boot_to_running_s)
    blocks = []
    for path in args.trace:
        try:
            jobs = load_trace(path)
        except TraceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.recommend:
            found = recommend(jobs, prices, bounds, timings)
            if args.json:
                print(json.dumps(found.as_json()))
                return 0
            blocks.append(render_recommendation(path, found))
            continue
        results = compare(jobs, prices, timings, serverless=serverless)
        if args.json:
            print(json.dumps([r.as_json() for r in results]))
            return 0
        blocks.append(render(path, jobs, prices, results))
    print("\n\n".join(blocks))
    if args.recommend:
        print(
            f"\nSearched idle_minutes {', '.join(f'{m:g}' for m in RECOMMEND_IDLE_MINUTES)} "
            f"on {prices.label}; "
            "the market is not searched (spot interruptions are not modelled)."
        )
        return 0
    print(
        "\nbilled h and idle h (billed, no job on the GPU) cover the trace; USD/month is the whole bill "
        "scaled to 730 h.\nwaited: jobs that waited for a boot; stops under job: jobs lost to a stop; "
        "tail: minutes billed after the last job\nor start request, per stop; USD/image: the trace's USD / "
        f"jobs completed.\n{serverless.name}: {serverless.description} (sources: docs/cost.md)."
    )
    return 0


def _replace(timings: Timings, **changes: float) -> Timings:
    from dataclasses import replace

    return replace(timings, **changes)


if __name__ == "__main__":
    raise SystemExit(main())
