"""The policy simulator: the real stop rule, modelled timings, the CPU-alarm failure mode, the CLI."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from autostop import idle
from autostop.idle import StopPolicy
from gpu_autostop_tools import simulate
from gpu_autostop_tools.simulate import (
    Autostop,
    Bounds,
    CpuAlarm,
    Job,
    Pricing,
    Serverless,
    Timings,
    TraceError,
    load_trace,
)

ROOT = Path(__file__).resolve().parents[2]
TRACES = sorted((ROOT / "examples" / "traces").glob("*.csv"))
PRICES = Pricing(hourly_usd=1.0, extras_per_hour_usd=0.0, fixed_monthly_usd=0.0, label="test")
T0 = datetime(2026, 11, 2, 9, 0, 7, tzinfo=UTC).timestamp()
DEFAULT = Autostop("autostop-default", StopPolicy(), recheck_s=300.0)


def jobs(*pairs: tuple[float, float]) -> list[Job]:
    return [Job(T0 + at, duration) for at, duration in pairs]


def test_the_sample_traces_exist() -> None:
    assert [p.name for p in TRACES] == ["hobby.csv", "nightly-batch.csv", "office-hours.csv"]


@pytest.mark.parametrize("trace", TRACES, ids=lambda p: p.stem)
def test_this_projects_policies_never_stop_under_a_job(trace: Path) -> None:
    results = {r.policy: r for r in simulate.compare(load_trace(trace), PRICES, serverless=Serverless())}
    assert set(results) == {
        "always-on",
        "cloudwatch-cpu-alarm",
        "autostop-default",
        "autostop-aggressive",
        "serverless-runpod-flex-16gb",
    }
    assert results["autostop-default"].stops_under_job == 0
    assert results["autostop-aggressive"].stops_under_job == 0
    assert results["always-on"].cold_starts == 0
    for name in ("autostop-default", "autostop-aggressive"):
        assert results[name].billed_hours < results["always-on"].billed_hours / 5
        assert results[name].cold_starts >= 1


def test_the_cpu_alarm_stops_long_low_cpu_renders() -> None:
    """The nightly batch: the GPU works for minutes at a time while CPU stays under 5 %."""
    results = {
        r.policy: r for r in simulate.compare(load_trace(ROOT / "examples/traces/nightly-batch.csv"), PRICES)
    }
    assert results["cloudwatch-cpu-alarm"].stops_under_job > 50
    assert results["autostop-default"].stops_under_job == 0


def test_a_single_job_cold_start_wait_and_stop_time() -> None:
    result = simulate.simulate(jobs((0, 60)), DEFAULT, PRICES)
    assert result.cold_starts == 1
    assert result.wait_p50_s == result.wait_p95_s == 90.0  # start request to ComfyUI ready
    # running at +30 s, job 90..150 s, idle 10 min, next 5-minute re-check: stop at +15 min
    tick = 300 * ((T0 + 150 + 600) // 300 + 1)
    assert result.billed_hours == pytest.approx((tick - (T0 + 30)) / 3600, abs=0.005)
    assert result.idle_hours == pytest.approx(result.billed_hours - 60 / 3600, abs=0.005)


def test_a_job_after_the_idle_window_is_a_second_cold_start_and_one_within_it_is_not() -> None:
    within = simulate.simulate(jobs((0, 30), (400, 30)), DEFAULT, PRICES)
    assert within.cold_starts == 1
    after = simulate.simulate(jobs((0, 30), (3600, 30)), DEFAULT, PRICES)
    assert after.cold_starts == 2
    assert after.wait_p50_s == 90.0


def test_a_job_arriving_while_stopping_waits_for_the_stop_and_a_boot() -> None:
    # Stop at the re-check 15 min in (see above); the job arrives 10 s into the 45 s stop.
    first = simulate.simulate(jobs((0, 60)), DEFAULT, PRICES)
    stop_at = T0 + 30 + first.billed_hours * 3600
    result = simulate.simulate([Job(T0, 60), Job(stop_at + 10, 30)], DEFAULT, PRICES)
    assert result.cold_starts == 2
    assert result.wait_p95_s > 90.0  # 35 s of stopping, then the boot


def test_a_long_quiet_render_is_stopped_by_the_cpu_alarm_but_not_by_the_stop_rule() -> None:
    render = jobs((0, 45 * 60))
    alarm = simulate.simulate(render, CpuAlarm(), PRICES)
    assert alarm.stops_under_job == 1
    assert alarm.billed_hours < 0.5  # it never finished
    ours = simulate.simulate(render, DEFAULT, PRICES)
    assert ours.stops_under_job == 0
    assert ours.billed_hours > 45 / 60


def test_a_busy_cpu_keeps_the_cpu_alarm_from_stopping_the_render() -> None:
    alarm = simulate.simulate(jobs((0, 45 * 60)), CpuAlarm(), PRICES, Timings(job_cpu_pct=25.0))
    assert alarm.stops_under_job == 0


def test_the_replay_goes_through_the_real_stop_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    assert simulate.decide is idle.decide
    calls: list[str] = []

    def spy(**kwargs: object) -> idle.Verdict:
        verdict = idle.decide(**kwargs)  # type: ignore[arg-type]
        calls.append(verdict.code)
        return verdict

    monkeypatch.setattr(simulate, "decide", spy)
    simulate.simulate(jobs((0, 60), (120, 600)), DEFAULT, PRICES)
    assert "boot_grace" in calls
    assert "queue_busy" in calls  # the 10-minute job holds the instance
    assert "recent_activity" in calls
    assert calls[-1] == "idle"


def test_the_composite_alarm_is_the_trigger_when_the_schedule_is_slow() -> None:
    slow = Autostop("slow-schedule", StopPolicy(), recheck_s=3600.0, composite_alarm=True)
    blind = Autostop("slow-schedule-no-alarm", StopPolicy(), recheck_s=3600.0, composite_alarm=False)
    with_alarm = simulate.simulate(jobs((0, 60)), slow, PRICES)
    without = simulate.simulate(jobs((0, 60)), blind, PRICES)
    assert with_alarm.billed_hours < without.billed_hours
    # 5-minute EC2 metrics, 2 periods and ~3 minutes of delay: about 15-20 minutes after the job
    assert 14 / 60 < with_alarm.billed_hours < 22 / 60


def test_cost_is_the_monthly_bill() -> None:
    prices = Pricing(hourly_usd=0.5, extras_per_hour_usd=0.1, fixed_monthly_usd=10.0, label="x")
    result = simulate.simulate(jobs((0, 60)), simulate.AlwaysOn(), prices)
    assert result.billed_hours == 24.0  # one whole day
    assert result.cost_usd == pytest.approx(730 * 0.6 + 10.0)  # scaled to a 730-hour month


def test_a_month_replays_fast() -> None:
    trace = load_trace(ROOT / "examples/traces/office-hours.csv")
    began = time.perf_counter()
    simulate.compare(trace, PRICES)
    assert time.perf_counter() - began < 2.0


def test_json_lists_exactly_the_promised_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate.main(["--trace", str(ROOT / "examples/traces/hobby.csv"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["policy"] for d in data] == [
        "always-on",
        "cloudwatch-cpu-alarm",
        "autostop-default",
        "autostop-aggressive",
        "serverless-runpod-flex-16gb",
    ]
    for entry in data:
        assert set(entry) == set(simulate.JSON_KEYS)


def test_text_table_for_several_traces(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate.main([a for p in TRACES for a in ("--trace", str(p))]) == 0
    out = capsys.readouterr().out
    assert out.count("stops under job") >= 3
    assert "autostop-aggressive" in out


def test_json_takes_one_trace() -> None:
    with pytest.raises(SystemExit):
        simulate.main(["--trace", str(TRACES[0]), "--trace", str(TRACES[1]), "--json"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,duration\n", "header"),
        ("timestamp,duration_s\n", "no jobs"),
        ("timestamp,duration_s\n2026-11-02T09:00:00Z,30\nyesterday,30\n", ":3: timestamp"),
        ("timestamp,duration_s\n2026-11-02T09:00:00Z,-5\n", ":2: duration_s must be"),
        ("timestamp,duration_s\n2026-11-02T09:00:00Z,abc\n", "not a number"),
        ("timestamp,duration_s\n2026-11-02T09:00:00Z,30,1\n", "expected 2 columns"),
    ],
)
def test_bad_traces_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(TraceError, match=message):
        load_trace(path)


def test_a_bad_trace_is_an_error_exit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate.main(["--trace", str(tmp_path / "absent.csv")]) == 2
    assert "cannot read trace" in capsys.readouterr().err


def test_traces_are_sorted_and_times_parsed(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("timestamp,duration_s\n2026-11-02T10:00:00Z,5\n2026-11-02T09:00:00+00:00,7.5\n\n")
    loaded = load_trace(path)
    assert [j.duration for j in loaded] == [7.5, 5.0]
    assert loaded[0].arrival == datetime(2026, 11, 2, 9, tzinfo=UTC).timestamp()
    assert loaded[1].arrival - loaded[0].arrival == timedelta(hours=1).total_seconds()


def test_the_sample_traces_are_reproducible(tmp_path: Path) -> None:
    from gpu_autostop_tools import traces as make_traces

    assert make_traces.main(["--out", str(tmp_path)]) == 0
    for trace in TRACES:
        assert (tmp_path / trace.name).read_text() == trace.read_text()


# --- the billed tail and the cost per image -----------------------------------------------------------


def _tick_after(seconds: float) -> float:
    """The stop function's next 5-minute re-check strictly after ``seconds``."""
    return 300 * (seconds // 300 + 1)


def test_the_billed_tail_is_from_the_last_job_to_the_stop() -> None:
    # running at +30 s, ComfyUI ready at +90 s, the job 90..150 s, idle 10 min, stop at the next re-check
    result = simulate.simulate(jobs((0, 60)), DEFAULT, PRICES)
    tail_min = (_tick_after(T0 + 150 + 600) - (T0 + 150)) / 60
    assert result.tail_p50_min == result.tail_max_min == round(tail_min, 1)
    assert 10 <= tail_min <= 15  # idle 10 min, then at most one 5-minute re-check


def test_tails_per_gap_give_the_median_and_the_maximum() -> None:
    result = simulate.simulate(jobs((0, 30), (3600, 30)), DEFAULT, PRICES)
    assert result.cold_starts == 2
    first = _tick_after(T0 + 120 + 600) - (T0 + 120)
    second = _tick_after(T0 + 3720 + 600) - (T0 + 3720)
    assert result.tail_p50_min == round((first + second) / 2 / 60, 1)
    assert result.tail_max_min == round(max(first, second) / 60, 1)


def test_a_stop_under_a_job_has_no_tail_and_never_stopping_has_none() -> None:
    alarm = simulate.simulate(jobs((0, 45 * 60)), CpuAlarm(), PRICES)
    assert alarm.stops_under_job == 1
    assert alarm.tail_p50_min == alarm.tail_max_min == 0.0
    assert alarm.usd_per_image is None  # nothing finished
    on = simulate.simulate(jobs((0, 60)), simulate.AlwaysOn(), PRICES)
    assert on.tail_p50_min is None
    assert on.tail_max_min is None


def test_usd_per_image_is_the_traces_dollars_over_the_jobs_completed() -> None:
    on = simulate.simulate(jobs((0, 60), (600, 60)), simulate.AlwaysOn(), PRICES)
    # one day at $1/h = $24 for the trace (USD/month 730), two images
    assert on.cost_usd == 730.0
    assert on.usd_per_image == 12.0


# --- the serverless row ----------------------------------------------------------------------------

ENDPOINT = Serverless(usd_per_s=0.001, cold_start_s=30.0, idle_s=5.0, storage_usd_month=2.0, speed=0.5)


def test_one_serverless_job_bills_cold_start_work_and_idle_timeout() -> None:
    result = simulate.simulate_serverless(jobs((0, 60)), ENDPOINT)
    billed_s = 30 + 60 * 0.5 + 5  # cold start, the job at twice the speed, the idle timeout
    month = 730 / 24  # the trace is one day
    assert result.billed_hours == round(billed_s / 3600, 2)
    assert result.cost_usd == round(billed_s * 0.001 * month + 2.0, 2)
    assert result.cold_starts == 1
    assert result.wait_p50_s == result.wait_p95_s == 30.0
    assert result.tail_p50_min == result.tail_max_min == round(5 / 60, 1)
    assert result.stops_under_job == 0
    assert result.usd_per_image == round(result.cost_usd / month, 4)


def test_serverless_seconds_are_rounded_up_per_worker() -> None:
    endpoint = Serverless(usd_per_s=1.0, cold_start_s=0.5, idle_s=0.2, storage_usd_month=0.0, speed=1.0)
    result = simulate.simulate_serverless(jobs((0, 10.1)), endpoint)
    assert result.cost_usd == round(11 * 730 / 24, 2)  # 10.8 s billed as 11


def test_serverless_workers_scale_with_load_and_expire_after_the_idle_timeout() -> None:
    endpoint = Serverless(usd_per_s=1.0, cold_start_s=30.0, idle_s=5.0, storage_usd_month=0.0, speed=1.0)
    # job 1: worker A 0..130 (+5 idle); job 2 at 10 s: A busy -> worker B 10..140 (+5 idle);
    # job 3 at 142 s: A expired at 135, B is warm (free at 140, idle until 145) -> no cold start
    warm = simulate.simulate_serverless(jobs((0, 100), (10, 100), (142, 10)), endpoint)
    assert warm.cold_starts == 2
    assert warm.cost_usd == round((135 + (142 + 10 + 5 - 10)) * 730 / 24, 2)
    # at 146 s both have stopped: a third cold start
    cold = simulate.simulate_serverless(jobs((0, 100), (10, 100), (146, 10)), endpoint)
    assert cold.cold_starts == 3
    assert cold.wait_p95_s == 30.0


@pytest.mark.parametrize(
    "change", [{"usd_per_s": -1.0}, {"idle_s": math.inf}, {"speed": 0.0}, {"cold_start_s": math.nan}]
)
def test_bad_serverless_figures_are_refused(change: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="serverless"):
        Serverless(**change)  # type: ignore[arg-type]


def test_serverless_flags_reach_the_row(capsys: pytest.CaptureFixture[str]) -> None:
    hobby = str(ROOT / "examples/traces/hobby.csv")
    assert simulate.main(["--trace", hobby, "--json"]) == 0
    base = json.loads(capsys.readouterr().out)[-1]
    args = ["--serverless-usd-per-s", "0.00032", "--serverless-storage-usd", "0"]
    assert simulate.main(["--trace", hobby, "--json", *args]) == 0
    doubled = json.loads(capsys.readouterr().out)[-1]
    assert doubled["policy"] == "serverless-runpod-flex-16gb"
    assert doubled["cost_usd"] == pytest.approx(2 * (base["cost_usd"] - 1.40), abs=0.02)
    with pytest.raises(SystemExit):
        simulate.main(["--trace", hobby, "--serverless-speed", "0"])


# --- --recommend -----------------------------------------------------------------------------------

EVERY_20_MIN = jobs(*((n * 1200.0, 60.0) for n in range(12)))


def test_recommend_takes_the_cheapest_idle_time_within_the_bounds() -> None:
    # Idle 5 or 10 min stops between jobs 20 minutes apart: 12 cold starts; 30 min keeps it up: 1.
    tight = simulate.recommend(EVERY_20_MIN, PRICES, Bounds(max_cold_starts_per_day=2), grid=(5.0, 30.0))
    assert tight.idle_minutes == 30.0
    assert tight.result is not None
    assert tight.result.cold_starts == 1
    assert tight.cold_starts_per_day == 1.0
    assert tight.default.cold_starts == 12  # the default (10 min) is always simulated
    assert tight.saves_usd_month == round(tight.default.cost_usd - tight.result.cost_usd, 2)
    assert tight.saves_usd_month < 0  # the bound costs money here, and the figure says so
    loose = simulate.recommend(EVERY_20_MIN, PRICES, Bounds(max_cold_starts_per_day=100), grid=(5.0, 30.0))
    assert loose.idle_minutes == 5.0
    assert loose.saves_usd_month is not None
    assert loose.saves_usd_month > 0


def test_recommend_says_when_nothing_fits() -> None:
    none = simulate.recommend(EVERY_20_MIN, PRICES, Bounds(max_wait_p95_s=10), grid=(5.0, 30.0))
    assert none.idle_minutes is None
    assert none.saves_usd_month is None
    text = simulate.render_recommendation("t.csv", none)
    assert "no idle_minutes" in text
    assert "idle_minutes = 10" in text


def test_recommend_never_picks_a_setting_that_stops_under_a_job(monkeypatch: pytest.MonkeyPatch) -> None:
    real = simulate.simulate

    def lossy(jobs: list[Job], policy: simulate.Policy, prices: Pricing, timings: object = None) -> object:
        result = real(jobs, policy, prices)
        if policy.name == "autostop-idle-5":  # the cheapest, but pretend it lost a job
            from dataclasses import replace

            return replace(result, stops_under_job=1)
        return result

    monkeypatch.setattr(simulate, "simulate", lossy)
    found = simulate.recommend(EVERY_20_MIN, PRICES, Bounds(max_cold_starts_per_day=100), grid=(5.0, 30.0))
    assert found.idle_minutes == 10.0


@pytest.mark.parametrize("flag", [["--max-wait-p95-s", "0"], ["--max-cold-starts-per-day", "-1"]])
def test_bad_bounds_are_refused(flag: list[str]) -> None:
    with pytest.raises(SystemExit):
        simulate.main(["--trace", str(TRACES[0]), "--recommend", *flag])


def test_recommend_prints_the_tfvars_line(capsys: pytest.CaptureFixture[str]) -> None:
    hobby = str(ROOT / "examples/traces/hobby.csv")
    assert simulate.main(["--trace", hobby, "--recommend", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["default_idle_minutes"] == 10.0
    assert data["saves_usd_month"] == pytest.approx(data["default_usd_month"] - data["usd_month"], abs=0.01)
    assert data["cold_starts_per_day"] <= 6
    assert data["wait_p95_s"] <= 180
    assert simulate.main(["--trace", hobby, "--recommend"]) == 0
    out = capsys.readouterr().out
    assert f"    idle_minutes = {data['idle_minutes']:g}\n" in out
    assert "market is not searched" in out
