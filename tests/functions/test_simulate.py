"""The policy simulator: the real stop rule, modelled timings, the CPU-alarm failure mode, the CLI."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from autostop import idle, simulate
from autostop.idle import StopPolicy
from autostop.simulate import Autostop, CpuAlarm, Job, Pricing, Timings, TraceError, load_trace

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
    results = {r.policy: r for r in simulate.compare(load_trace(trace), PRICES)}
    assert set(results) == {"always-on", "cloudwatch-cpu-alarm", "autostop-default", "autostop-aggressive"}
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
    from scripts import make_traces

    assert make_traces.main(["--out", str(tmp_path)]) == 0
    for trace in TRACES:
        assert (tmp_path / trace.name).read_text() == trace.read_text()
