"""The weekly cost report: Cost Explorer figures, the project's own figures, budgets, and the email
that still goes out (and says why) when Cost Explorer cannot answer."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto.ce.models import ce_backends
from moto.core import DEFAULT_ACCOUNT_ID

from autostop import cost_report, ledger
from autostop.cap import CapState
from autostop.handlers import _common
from autostop.handlers import cost_report as handler

from .conftest import Env, FakeContext, iso

EVENTS = Path(__file__).parent / "events"
CREDITS = {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit", "Refund"]}}
LEDGER = "/gpu-autostop/ledger"
CAP = "/gpu-autostop/cap"


@pytest.fixture
def reporting(env: Env) -> Env:
    env.with_config(ledger_parameter=LEDGER, cap_parameter=CAP, fixed_monthly_usd=12.0)
    return env


def explorer_answers(*amounts: float) -> None:
    """Queue Cost Explorer answers (moto keeps them in order: month to date, then last 7 days)."""
    queue = ce_backends[DEFAULT_ACCOUNT_ID]["aws"].cost_usage_results_queue
    for amount in amounts:
        queue.append(
            {
                "ResultsByTime": [
                    {
                        "TimePeriod": {"Start": "2026-11-01", "End": "2026-11-22"},
                        "Total": {"UnblendedCost": {"Amount": str(amount), "Unit": "USD"}},
                        "Groups": [],
                        "Estimated": True,
                    }
                ],
                "DimensionValueAttributes": [],
            }
        )


def requests_to_ce(env: Env) -> list[dict[str, Any]]:
    """Capture what the report asks Cost Explorer."""
    seen: list[dict[str, Any]] = []
    from autostop import aws

    client = aws.client("ce")
    client.meta.events.register(
        "provide-client-params.ce.GetCostAndUsage", lambda params, **_: seen.append(params)
    )
    return seen


def usage(env: Env) -> None:
    """This month: 3 sessions, 6 hours, 120 images; 2 of them in the last 7 days."""
    now = env.clock.now()
    book = ledger.Ledger.empty(now)
    for days_ago, hours, images in ((12, 2, 40), (3, 3, 60), (1, 1, 20)):
        launch = now - timedelta(days=days_ago, hours=hours)
        book.record_start(launch, launch, "g4dn.xlarge", 0.526)
        book.record_stop(launch + timedelta(hours=hours), launch, "g4dn.xlarge", 0.526, images=images)
    env.client("ssm").put_parameter(Name=LEDGER, Value=book.dumps(), Type="String", Overwrite=True)


def stop_instance(env: Env) -> None:
    env.set_state("stopped")


def test_the_report_combines_cost_explorer_and_own_figures(reporting: Env) -> None:
    stop_instance(reporting)
    usage(reporting)
    explorer_answers(23.41, 8.12)
    seen = requests_to_ce(reporting)
    answer = cost_report.run(reporting.config, reporting.clock.now())
    assert answer["cost_explorer"] == "ok"
    assert answer["month_to_date_usd"] == 23.41
    assert answer["last_7_days_usd"] == 8.12
    assert answer["running_hours_month"] == 6.0
    assert answer["starts_month"] == 3
    assert answer["images_month"] == 120
    assert answer["cost_per_image_usd"] == pytest.approx(23.41 / 120, abs=1e-4)
    assert answer["sent"] is True
    [month, week, credits] = seen
    assert month["TimePeriod"] == {"Start": "2026-11-01", "End": "2026-11-22"}
    assert week["TimePeriod"] == {"Start": "2026-11-15", "End": "2026-11-22"}
    assert credits["TimePeriod"] == month["TimePeriod"]
    assert month["Filter"]["And"][0]["Dimensions"]["Key"] == "SERVICE"  # no tag configured: EC2
    [note] = reporting.notifications()
    assert note["Subject"] == "gpu-autostop weekly cost: $23.41 so far in November 2026"
    body = note["Message"]
    for text in (
        "Month to date (2026-11-01 to 2026-11-22, excl.):  $23.41",
        "Last 7 days (2026-11-15 to 2026-11-22, excl.): $8.12",
        "November 2026: 6.0 running hours, 3 starts, 120 images",
        "Last 7 days: 4.0 running hours, 2 starts, 80 images",
        "Cost per image this month: $0.20 (Cost Explorer)",
        "$50: 47% used, on pace for $",
        "$150: 16% used",
        "estimated",
        "all EC2 in the account",
    ):
        assert text in body, text
    assert all(len(line) <= 80 for line in body.splitlines())  # reads well in a mail client


def test_the_project_tag_filters_cost_explorer_when_configured(reporting: Env) -> None:
    reporting.with_config(cost_tag_key="Project", cost_tag_value="gpu-autostop")
    explorer_answers(5.0, 1.0)
    seen = requests_to_ce(reporting)
    answer = cost_report.run(reporting.config, reporting.clock.now())
    tag = {"Tags": {"Key": "Project", "Values": ["gpu-autostop"], "MatchOptions": ["EQUALS"]}}
    assert seen[0]["Filter"] == {"And": [tag, {"Not": CREDITS}]}
    assert seen[2]["Filter"] == {"And": [tag, CREDITS]}
    assert "costs tagged Project=gpu-autostop" in answer["message"]


@pytest.mark.parametrize(
    "code", ["AccessDeniedException", "DataUnavailableException", "OptInRequiredException"]
)
def test_without_cost_explorer_the_report_still_goes_out_and_says_why(
    reporting: Env, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    stop_instance(reporting)
    usage(reporting)

    def unavailable(config: object, now: object) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "not for you"}}, "GetCostAndUsage")

    monkeypatch.setattr(cost_report, "query_cost_explorer", unavailable)
    answer = cost_report.run(reporting.config, reporting.clock.now())
    assert answer["cost_explorer"] == "unavailable"
    assert answer["sent"] is True
    assert answer["own_estimate_usd"] is not None
    assert answer["own_estimate_usd"] > 6 * 0.526  # the sessions plus fixed costs so far
    [note] = reporting.notifications()
    assert note["Subject"].endswith("(estimate)")
    assert f"Cost Explorer is unavailable ({code}: not for you)" in note["Message"]
    assert "own estimate" in note["Message"]
    assert "Cost per image this month: $" in note["Message"]


def test_a_running_instance_counts_its_images_so_far(reporting: Env) -> None:
    explorer_answers(3.0, 3.0)
    reporting.write_record(images_completed=9)
    answer = cost_report.run(reporting.config, reporting.clock.now())
    assert answer["images_month"] == 9
    assert "running since" in answer["message"]


def test_a_tripped_cap_is_in_the_report(reporting: Env) -> None:
    reporting.with_config(hard_cap_usd=60.0)
    explorer_answers(61.0, 20.0)
    reporting.client("ssm").put_parameter(
        Name=CAP,
        Value=CapState(True, reporting.clock.now(), "budget", "AWS Budgets: over").dumps(),
        Type="String",
    )
    answer = cost_report.run(reporting.config, reporting.clock.now())
    assert answer["cap_tripped"] is True
    assert "Hard cap $60.00: TRIPPED (AWS Budgets: over)" in answer["message"]
    assert "make reset-cap" in answer["message"]
    assert "$50: 122% used" in answer["message"]
    assert "OVER" in answer["message"]


def test_without_a_ledger_the_report_says_what_it_cannot_know(env: Env) -> None:
    explorer_answers(1.0, 0.5)
    answer = cost_report.run(env.config, env.clock.now())
    assert answer["own_estimate_usd"] is None
    assert "LEDGER_PARAMETER unset" in answer["message"]


def test_on_the_first_of_the_month_only_the_week_is_asked(reporting: Env) -> None:
    reporting.clock.set(reporting.clock.now().replace(day=1, hour=7))
    explorer_answers(4.0)
    seen = requests_to_ce(reporting)
    answer = cost_report.run(reporting.config, reporting.clock.now())
    assert len(seen) == 1
    assert answer["month_to_date_usd"] == 0.0


def report_env(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "INSTANCE_ID": env.instance_id,
        "AGENT_STATE_PARAMETER": env.config.agent_state_parameter,
        "LEASE_PARAMETER": env.config.lease_parameter,
        "ALERT_TOPIC_ARN": env.topic_arn,
        "LEDGER_PARAMETER": LEDGER,
        "COST_TAG_KEY": "Project",
        "COST_TAG_VALUE": "gpu-autostop",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(_common, "clock", lambda: env.clock)
    _common.config.cache_clear()


def test_the_handler_on_its_schedule(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    report_env(env, monkeypatch)
    explorer_answers(2.0, 1.0)
    schedule = json.loads((EVENTS / "schedule.json").read_text())
    answer = handler.handler(schedule, FakeContext())
    assert answer["ok"] is True
    assert answer["sent"] is True
    [note] = env.notifications()
    assert "weekly cost" in note["Subject"]
    [document] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith('{"_aws"')]
    assert document["CostReports"] == [1.0]


def test_the_handler_can_build_without_sending(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    report_env(env, monkeypatch)
    explorer_answers(2.0, 1.0)
    answer = handler.handler({"send": False}, FakeContext())
    assert answer["sent"] is False
    assert answer["message"].startswith("gpu-autostop weekly cost report")
    assert env.notifications() == []


@pytest.mark.parametrize(
    ("event", "code"),
    [({"sned": True}, "UnknownKeys"), ({"send": "yes"}, "InvalidSend"), ([], "InvalidEvent")],
)
def test_the_handler_refuses_bad_input(
    env: Env, monkeypatch: pytest.MonkeyPatch, event: Any, code: str
) -> None:
    report_env(env, monkeypatch)
    answer = handler.handler(event, FakeContext())
    assert answer["error"]["code"] == code
    assert env.calls.names == []


def test_subject_and_iso_helpers_are_plain_text(reporting: Env) -> None:
    explorer_answers(0.0, 0.0)
    answer = cost_report.run(reporting.config, reporting.clock.now())
    assert answer["subject"].isascii()
    assert iso(reporting.clock.now()) not in answer["subject"]


def _ce_answer(amount: float, *, estimated: bool = False) -> dict[str, Any]:
    return {
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": "2026-11-01", "End": "2026-11-22"},
                "Total": {"UnblendedCost": {"Amount": str(amount), "Unit": "USD"}},
                "Groups": [],
                "Estimated": estimated,
            }
        ]
    }


def test_credits_are_kept_out_of_the_costs_and_shown_on_their_own_line(reporting: Env) -> None:
    """moto has no Cost Explorer semantics (it answers whatever is queued): Stubber pins each request.

    A $40 credit this month must neither hide the $23.41 spent nor make the budgets look unused.
    """
    stop_instance(reporting)
    usage(reporting)
    from autostop import aws

    services = {"Dimensions": {"Key": "SERVICE", "Values": list(cost_report.EC2_SERVICES)}}
    costs = {"And": [services, {"Not": CREDITS}]}
    month = {"Start": "2026-11-01", "End": "2026-11-22"}
    client = aws.client("ce")
    with Stubber(client) as stub:
        stub.add_response(
            "get_cost_and_usage",
            _ce_answer(23.41),
            {"TimePeriod": month, "Granularity": "MONTHLY", "Metrics": ["UnblendedCost"], "Filter": costs},
        )
        stub.add_response(
            "get_cost_and_usage",
            _ce_answer(8.12),
            {
                "TimePeriod": {"Start": "2026-11-15", "End": "2026-11-22"},
                "Granularity": "DAILY",
                "Metrics": ["UnblendedCost"],
                "Filter": costs,
            },
        )
        stub.add_response(
            "get_cost_and_usage",
            _ce_answer(-40.0),
            {
                "TimePeriod": month,
                "Granularity": "MONTHLY",
                "Metrics": ["UnblendedCost"],
                "Filter": {"And": [services, CREDITS]},
            },
        )
        answer = cost_report.run(reporting.config, reporting.clock.now())
        stub.assert_no_pending_responses()
    assert answer["month_to_date_usd"] == 23.41
    assert answer["last_7_days_usd"] == 8.12
    assert answer["credits_month_usd"] == -40.0
    assert answer["cost_per_image_usd"] == pytest.approx(23.41 / 120, abs=1e-4)
    lines = answer["message"].splitlines()
    assert "  Month to date (2026-11-01 to 2026-11-22, excl.):  $23.41" in lines
    assert "  Credits and refunds this month: -$40.00 (not netted above)" in lines
    assert "  $50: 47% used, on pace for" in answer["message"]
    assert answer["subject"] == "gpu-autostop weekly cost: $23.41 so far in November 2026"
