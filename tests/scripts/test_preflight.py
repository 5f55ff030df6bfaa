"""`make preflight`: every check passes, fails, and says "could not check" on AccessDenied.

Most AWS answers are injected with botocore's Stubber: moto has no GetAccountSettings, knows only VPC
quotas in Service Quotas, no region opt-in states and no Cost Explorer data. The leftovers check runs on
moto, which has every resource it looks for.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import NoCredentialsError
from botocore.stub import ANY, Stubber
from moto import mock_aws

from scripts import preflight
from scripts.preflight import Result, Settings

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[2]
AMI_PARAM = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"
DEFAULTS = Settings(
    name="gpu-autostop",
    region=REGION,
    instance_type="g4dn.xlarge",
    ami_ssm_parameter=AMI_PARAM,
    alert_emails=("you@example.com",),
    reserved_concurrency={"start": 2, "status": 4, "stop": 2, "cost_report": -1, "budget": -1},
)
TODAY = dt.date(2026, 12, 1)


class Stubs(dict[str, Any]):
    """Clients keyed by service, each with an active Stubber (``stubs.stub("ec2")``)."""

    def __init__(self) -> None:
        super().__init__()
        self.stubbers: dict[str, Stubber] = {}

    def stub(self, service: str) -> Stubber:
        if service not in self.stubbers:
            client = boto3.client(
                service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
            )
            self[service] = client
            self.stubbers[service] = Stubber(client)
            self.stubbers[service].activate()
        return self.stubbers[service]

    def done(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


@pytest.fixture
def stubs() -> Iterator[Stubs]:
    s = Stubs()
    yield s
    s.done()


def statuses(results: list[Result]) -> list[tuple[str, str]]:
    return [(r.check, r.status) for r in results]


def offerings(stubs: Stubs, itype: str, zones: list[str]) -> None:
    stubs.stub("ec2").add_response(
        "describe_instance_type_offerings",
        {
            "InstanceTypeOfferings": [
                {"InstanceType": itype, "LocationType": "availability-zone", "Location": z} for z in zones
            ]
        },
        {"LocationType": "availability-zone", "Filters": [{"Name": "instance-type", "Values": [itype]}]},
    )


def instance_types(stubs: Stubs, vcpus: dict[str, int]) -> None:
    stubs.stub("ec2").add_response(
        "describe_instance_types",
        {"InstanceTypes": [{"InstanceType": t, "VCpuInfo": {"DefaultVCpus": v}} for t, v in vcpus.items()]},
        {"InstanceTypes": sorted(vcpus)},
    )


def quota(stubs: Stubs, code: str, value: float) -> None:
    stubs.stub("service-quotas").add_response(
        "get_service_quota",
        {"Quota": {"ServiceCode": "ec2", "QuotaCode": code, "Value": value}},
        {"ServiceCode": "ec2", "QuotaCode": code},
    )


def account_settings(stubs: Stubs, total: int, unreserved: int) -> None:
    stubs.stub("lambda").add_response(
        "get_account_settings",
        {"AccountLimit": {"ConcurrentExecutions": total, "UnreservedConcurrentExecutions": unreserved}},
    )


def no_function_concurrency(stubs: Stubs, names: list[str]) -> None:
    for name in names:
        stubs.stub("lambda").add_client_error(
            "get_function_concurrency", "ResourceNotFoundException", expected_params={"FunctionName": name}
        )


def image(stubs: Stubs, ami: str, size: int) -> None:
    stubs.stub("ec2").add_response(
        "describe_images",
        {
            "Images": [
                {
                    "ImageId": ami,
                    "Name": "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 24.04)",
                    "RootDeviceName": "/dev/sda1",
                    "BlockDeviceMappings": [
                        {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": size}},
                        {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
                    ],
                }
            ]
        },
        {"ImageIds": [ami]},
    )


# --- identity and region ------------------------------------------------------------------------


def test_identity_ok_and_refused(stubs: Stubs) -> None:
    sts = stubs.stub("sts")
    sts.add_response(
        "get_caller_identity",
        {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/me", "UserId": "AIDA"},
    )
    sts.add_client_error(
        "get_caller_identity", "ExpiredToken", "The security token included in the request is expired"
    )

    assert statuses(preflight.check_identity(stubs, DEFAULTS)) == [("credentials", "ok")]
    refused = preflight.check_identity(stubs, DEFAULTS)
    assert statuses(refused) == [("credentials", "fail")]
    assert "ExpiredToken" in refused[0].message
    assert "aws configure" in refused[0].fix


def test_no_credentials_fails_and_stops_there() -> None:
    class NoCredentials:
        def get_caller_identity(self) -> None:
            raise NoCredentialsError

    # Only sts exists: any other check would raise KeyError.
    results = preflight.run_checks({"sts": NoCredentials()}, DEFAULTS)
    assert statuses(results) == [("credentials", "fail")]
    assert results[0].message == "no AWS credentials found."


def test_region_enabled_not_enabled_unknown(stubs: Stubs) -> None:
    ec2 = stubs.stub("ec2")
    ec2.add_response(
        "describe_regions",
        {"Regions": [{"RegionName": REGION, "OptInStatus": "opt-in-not-required"}]},
        {"AllRegions": True},
    )
    ec2.add_response(
        "describe_regions",
        {"Regions": [{"RegionName": "af-south-1", "OptInStatus": "not-opted-in"}]},
        {"AllRegions": True},
    )
    ec2.add_response("describe_regions", {"Regions": []}, {"AllRegions": True})

    assert statuses(preflight.check_region(stubs, DEFAULTS)) == [("region", "ok")]
    [off] = preflight.check_region(stubs, Settings(**{**DEFAULTS.__dict__, "region": "af-south-1"}))
    assert off.status == "fail"
    assert off.fix.startswith("aws account enable-region --region-name af-south-1")
    assert statuses(preflight.check_region(stubs, Settings(**{**DEFAULTS.__dict__, "region": "xx-1"}))) == [
        ("region", "fail")
    ]


# --- instance types and quotas ------------------------------------------------------------------


def test_offerings_in_the_instance_zone(stubs: Stubs) -> None:
    s = Settings(**{**DEFAULTS.__dict__, "fallback_instance_types": ("g5.xlarge", "g6.xlarge", "zz9.huge")})
    offerings(stubs, "g4dn.xlarge", ["us-east-1b", "us-east-1a"])
    offerings(stubs, "g5.xlarge", ["us-east-1a", "us-east-1c"])
    offerings(stubs, "g6.xlarge", ["us-east-1c"])
    offerings(stubs, "zz9.huge", [])

    results = preflight.check_offerings(stubs, s)

    # The zone is the first (sorted) zone offering instance_type, as Terraform picks it.
    assert [r.message for r in results] == [
        "g4dn.xlarge is offered in us-east-1a.",
        "g5.xlarge is offered in us-east-1a.",
        "g6.xlarge is not offered in us-east-1a (only us-east-1c).",
        "zz9.huge is not offered in us-east-1.",
    ]
    assert statuses(results) == [
        ("instance type", "ok"),
        ("fallback type", "ok"),
        ("fallback type", "warn"),
        ("fallback type", "warn"),
    ]


def test_primary_type_not_in_the_subnets_zone_fails(stubs: Stubs) -> None:
    s = Settings(**{**DEFAULTS.__dict__, "subnet_id": "subnet-0123456789abcdef0"})
    offerings(stubs, "g4dn.xlarge", ["us-east-1a", "us-east-1b"])
    stubs.stub("ec2").add_response(
        "describe_subnets",
        {"Subnets": [{"SubnetId": s.subnet_id, "AvailabilityZone": "us-east-1e"}]},
        {"SubnetIds": [s.subnet_id]},
    )
    [result] = preflight.check_offerings(stubs, s)
    assert result.status == "fail"
    assert result.message == "g4dn.xlarge is not offered in us-east-1e (only us-east-1a, us-east-1b)."


def test_vcpu_quota_zero_fails_with_the_request_command(stubs: Stubs) -> None:
    instance_types(stubs, {"g4dn.xlarge": 4})
    quota(stubs, "L-DB2E81BA", 0.0)

    [result] = preflight.check_vcpu_quota(stubs, DEFAULTS)

    assert result.status == "fail"
    assert '"Running On-Demand G and VT instances" (L-DB2E81BA) is 0 vCPUs' in result.message
    assert (
        "aws service-quotas request-service-quota-increase --region us-east-1 --service-code ec2 "
        "--quota-code L-DB2E81BA --desired-value 4"
    ) in result.fix


def test_vcpu_quota_covers_the_largest_type_per_family(stubs: Stubs) -> None:
    s = Settings(**{**DEFAULTS.__dict__, "fallback_instance_types": ("g5.2xlarge", "p3.2xlarge")})
    instance_types(stubs, {"g4dn.xlarge": 4, "g5.2xlarge": 8, "p3.2xlarge": 8})
    quota(stubs, "L-DB2E81BA", 8.0)
    quota(stubs, "L-417A185B", 4.0)

    results = preflight.check_vcpu_quota(stubs, s)

    assert statuses(results) == [("vCPU quota", "ok"), ("vCPU quota", "fail")]
    assert "g5.2xlarge needs 8" in results[0].message
    assert "p3.2xlarge needs 8" in results[1].message


def test_spot_uses_the_spot_quota_and_ignores_fallbacks(stubs: Stubs) -> None:
    s = Settings(**{**DEFAULTS.__dict__, "market": "spot", "fallback_instance_types": ("g5.2xlarge",)})
    instance_types(stubs, {"g4dn.xlarge": 4})
    quota(stubs, "L-3819A6DF", 4.0)
    [result] = preflight.check_vcpu_quota(stubs, s)
    assert result.status == "ok"
    assert '"All G and VT Spot Instance Requests" (L-3819A6DF) is 4 vCPUs' in result.message


def test_quota_access_denied_could_not_check(stubs: Stubs) -> None:
    instance_types(stubs, {"g4dn.xlarge": 4})
    stubs.stub("service-quotas").add_client_error("get_service_quota", "AccessDeniedException", "not allowed")
    [result] = preflight.check_vcpu_quota(stubs, DEFAULTS)
    assert result == Result(
        "vCPU quota", "unknown", "could not check, because AccessDeniedException: not allowed"
    )


def test_spot_role_missing_exists_and_not_needed(stubs: Stubs) -> None:
    spot = Settings(**{**DEFAULTS.__dict__, "market": "spot"})
    iam = stubs.stub("iam")
    iam.add_client_error("get_role", "NoSuchEntity", expected_params={"RoleName": "AWSServiceRoleForEC2Spot"})
    iam.add_response(
        "get_role",
        {
            "Role": {
                "Path": "/aws-service-role/spot.amazonaws.com/",
                "RoleName": "AWSServiceRoleForEC2Spot",
                "RoleId": "AROAEXAMPLE12345",
                "Arn": "arn:aws:iam::123456789012:role/x",
                "CreateDate": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            }
        },
        {"RoleName": "AWSServiceRoleForEC2Spot"},
    )

    [missing] = preflight.check_spot_role(stubs, spot)
    assert missing.status == "fail"
    assert missing.fix == "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com"
    assert statuses(preflight.check_spot_role(stubs, spot)) == [("spot role", "ok")]
    assert preflight.check_spot_role(stubs, DEFAULTS) == []  # on-demand: no IAM call (Stubber would fail)


# --- Lambda concurrency -------------------------------------------------------------------------


def test_lambda_new_account_cannot_reserve(stubs: Stubs) -> None:
    account_settings(stubs, 10, 10)
    no_function_concurrency(stubs, ["gpu-autostop-start", "gpu-autostop-status", "gpu-autostop-stop"])

    results = preflight.check_lambda_concurrency(stubs, DEFAULTS)

    assert statuses(results) == [("Lambda concurrency", "fail"), ("Lambda concurrency", "warn")]
    assert "asks for 8 (start 2, status 4, stop 2)" in results[0].message
    assert "may reserve only 0" in results[0].message
    assert "start = -1, status = -1, stop = -1" in results[0].fix
    assert "L-B99A9384" in results[0].fix
    assert "concurrency limit is 10" in results[1].message


def test_lambda_no_reservations_on_a_new_account_only_warns(stubs: Stubs) -> None:
    s = Settings(**{**DEFAULTS.__dict__, "reserved_concurrency": {"start": -1, "status": -1, "stop": -1}})
    account_settings(stubs, 10, 10)
    assert statuses(preflight.check_lambda_concurrency(stubs, s)) == [
        ("Lambda concurrency", "ok"),
        ("Lambda concurrency", "warn"),
    ]


def test_lambda_limits_at_the_edge_and_on_redeploy(stubs: Stubs) -> None:
    # 108 unreserved: 8 may be reserved; 107: only 7.
    account_settings(stubs, 1000, 108)
    no_function_concurrency(stubs, ["gpu-autostop-start", "gpu-autostop-status", "gpu-autostop-stop"])
    assert statuses(preflight.check_lambda_concurrency(stubs, DEFAULTS)) == [("Lambda concurrency", "ok")]

    account_settings(stubs, 1000, 107)
    no_function_concurrency(stubs, ["gpu-autostop-start", "gpu-autostop-status", "gpu-autostop-stop"])
    assert statuses(preflight.check_lambda_concurrency(stubs, DEFAULTS)) == [("Lambda concurrency", "fail")]

    # A redeploy: the stack's own 8 are already out of "unreserved" and count as available again.
    account_settings(stubs, 200, 100)
    for name in ("gpu-autostop-start", "gpu-autostop-status", "gpu-autostop-stop"):
        stubs.stub("lambda").add_response(
            "get_function_concurrency",
            {"ReservedConcurrentExecutions": 2 if name != "gpu-autostop-status" else 4},
            {"FunctionName": name},
        )
    assert statuses(preflight.check_lambda_concurrency(stubs, DEFAULTS)) == [("Lambda concurrency", "ok")]


def test_lambda_account_settings_denied_could_not_check(stubs: Stubs) -> None:
    stubs.stub("sts").add_response(
        "get_caller_identity", {"Account": "1", "Arn": "arn:aws:iam::1:user/me", "UserId": "x"}
    )
    stubs.stub("lambda").add_client_error("get_account_settings", "AccessDeniedException", "no")
    results = preflight.run_checks(stubs, DEFAULTS, checks=[preflight.check_lambda_concurrency])
    assert results[1] == Result(
        "lambda concurrency", "unknown", "could not check, because AccessDeniedException: no"
    )


# --- AMI, Cost Explorer, emails -----------------------------------------------------------------


def test_ami_from_ssm_fits_or_not(stubs: Stubs) -> None:
    ssm = stubs.stub("ssm")
    for _ in range(2):
        ssm.add_response(
            "get_parameter", {"Parameter": {"Name": AMI_PARAM, "Value": "ami-0abc"}}, {"Name": AMI_PARAM}
        )
    image(stubs, "ami-0abc", 75)
    image(stubs, "ami-0abc", 75)

    assert statuses(preflight.check_ami(stubs, DEFAULTS)) == [("AMI", "ok")]
    [small] = preflight.check_ami(stubs, Settings(**{**DEFAULTS.__dict__, "root_volume_size_gb": 60}))
    assert small.status == "fail"
    assert small.message == "ami-0abc's root snapshot is 75 GiB, root_volume_size_gb is 60."
    assert small.fix == "set root_volume_size_gb = 75 or more"


def test_ami_parameter_or_image_missing(stubs: Stubs) -> None:
    stubs.stub("ssm").add_client_error(
        "get_parameter", "ParameterNotFound", expected_params={"Name": AMI_PARAM}
    )
    stubs.stub("ec2").add_client_error(
        "describe_images", "InvalidAMIID.NotFound", expected_params={"ImageIds": ["ami-1"]}
    )
    assert statuses(preflight.check_ami(stubs, DEFAULTS)) == [("AMI", "fail")]
    [gone] = preflight.check_ami(stubs, Settings(**{**DEFAULTS.__dict__, "ami_id": "ami-1"}))
    assert gone.status == "fail"
    assert "ami-1 does not exist" in gone.message


def test_cost_explorer_enabled_disabled_and_tag(stubs: Stubs) -> None:
    ce = stubs.stub("ce")
    period = {
        "TimePeriod": {"Start": "2026-11-30", "End": "2026-12-01"},
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
    }
    ce.add_response("get_cost_and_usage", {"ResultsByTime": []}, period)
    ce.add_client_error("get_cost_and_usage", "DataUnavailableException", expected_params=period)
    ce.add_response(
        "list_cost_allocation_tags",
        {"CostAllocationTags": [{"TagKey": "Project", "Type": "UserDefined", "Status": "Inactive"}]},
        {"TagKeys": ["Project"], "Type": "UserDefined"},
    )

    assert statuses(preflight.check_cost_explorer(stubs, DEFAULTS, today=TODAY)) == [("Cost Explorer", "ok")]
    tagged = Settings(**{**DEFAULTS.__dict__, "budget_filter_project_tag": True})
    results = preflight.check_cost_explorer(stubs, tagged, today=TODAY)
    assert statuses(results) == [("Cost Explorer", "warn"), ("cost-allocation tag", "warn")]
    assert "DataUnavailableException" in results[0].message
    assert "Project is Inactive" in results[1].message
    off = Settings(**{**DEFAULTS.__dict__, "enable_cost_report": False})
    assert preflight.check_cost_explorer(stubs, off, today=TODAY) == []  # no call ($0.01 each)


def test_alert_emails() -> None:
    assert statuses(preflight.check_alert_emails({}, DEFAULTS)) == [("alert emails", "ok")]
    [empty] = preflight.check_alert_emails({}, Settings(**{**DEFAULTS.__dict__, "alert_emails": ()}))
    assert empty.status == "warn"
    assert "alert_emails" in empty.fix


# --- leftovers (moto) ---------------------------------------------------------------------------


@pytest.fixture
def moto_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield {
            svc: boto3.client(svc, region_name=REGION)
            for svc in ("lambda", "iam", "ssm", "logs", "sns", "kms", "sqs")
        }


def test_leftovers_none_then_found(moto_clients: dict[str, Any]) -> None:
    assert statuses(preflight.check_leftovers(moto_clients, DEFAULTS)) == [("leftovers", "ok")]

    moto_clients["iam"].create_role(
        RoleName="gpu-autostop-start-lambda",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    moto_clients["ssm"].put_parameter(Name="/gpu-autostop/lease", Value="{}", Type="String")
    moto_clients["logs"].create_log_group(logGroupName="/aws/lambda/gpu-autostop-stop")
    moto_clients["logs"].create_log_group(logGroupName="/aws/lambda/gpu-autostop-stop-other")
    key = moto_clients["kms"].create_key()["KeyMetadata"]["KeyId"]
    moto_clients["kms"].create_alias(AliasName="alias/gpu-autostop", TargetKeyId=key)
    moto_clients["sns"].create_topic(Name="gpu-autostop-alerts")
    moto_clients["sns"].create_topic(Name="other-gpu-autostop-alerts-x")
    moto_clients["sqs"].create_queue(QueueName="gpu-autostop-dlq")

    [result] = preflight.check_leftovers(moto_clients, DEFAULTS)

    assert result.status == "fail"
    assert result.fix.startswith("import them (terraform import) or delete them")
    for thing in (
        "IAM role gpu-autostop-start-lambda",
        "SSM parameter /gpu-autostop/lease",
        "log group /aws/lambda/gpu-autostop-stop;",
        "KMS alias alias/gpu-autostop",
        ":gpu-autostop-alerts",
        "SQS queue gpu-autostop-dlq",
    ):
        assert thing in result.message
    assert "6 resource(s)" in result.message
    # Another deployment's name is not this one's.
    assert statuses(
        preflight.check_leftovers(moto_clients, Settings(**{**DEFAULTS.__dict__, "name": "other"}))
    ) == [("leftovers", "ok")]


def test_leftovers_are_the_stacks_own_once_deployed() -> None:
    deployed = Settings(**{**DEFAULTS.__dict__, "deployed": True})
    assert statuses(preflight.check_leftovers({}, deployed)) == [("leftovers", "ok")]  # no client touched


# --- a brand-new account, end to end ------------------------------------------------------------

# The output for a brand-new account (G vCPU quota 0, Lambda concurrency 10), as the README shows it.
NEW_ACCOUNT_OUTPUT = (Path(__file__).parent / "preflight_new_account.txt").read_text()


def brand_new_account(stubs: Stubs) -> None:
    stubs.stub("sts").add_response(
        "get_caller_identity",
        {"Account": "123456789012", "UserId": "AIDA", "Arn": "arn:aws:iam::123456789012:user/admin"},
    )
    stubs.stub("ec2").add_response(
        "describe_regions", {"Regions": [{"RegionName": REGION, "OptInStatus": "opt-in-not-required"}]}
    )
    offerings(stubs, "g4dn.xlarge", ["us-east-1a", "us-east-1b", "us-east-1c"])
    instance_types(stubs, {"g4dn.xlarge": 4})
    quota(stubs, "L-DB2E81BA", 0.0)
    account_settings(stubs, 10, 10)
    names = ["gpu-autostop-start", "gpu-autostop-status", "gpu-autostop-stop"]
    no_function_concurrency(stubs, names)
    stubs.stub("ssm").add_response("get_parameter", {"Parameter": {"Name": AMI_PARAM, "Value": "ami-0abc"}})
    image(stubs, "ami-0abc", 75)
    stubs.stub("ce").add_client_error("get_cost_and_usage", "DataUnavailableException")
    for fn in [*names, "gpu-autostop-cost-report"]:
        stubs.stub("lambda").add_client_error(
            "get_function", "ResourceNotFoundException", expected_params={"FunctionName": fn}
        )
        stubs.stub("iam").add_client_error(
            "get_role", "NoSuchEntity", expected_params={"RoleName": f"{fn}-lambda"}
        )
        stubs.stub("logs").add_response(
            "describe_log_groups", {"logGroups": []}, {"logGroupNamePrefix": f"/aws/lambda/{fn}"}
        )
    for param in ("agent-state", "lease", "ledger", "cap"):
        stubs.stub("ssm").add_client_error(
            "get_parameter", "ParameterNotFound", expected_params={"Name": f"/gpu-autostop/{param}"}
        )
    stubs.stub("sns").add_response("list_topics", {"Topics": []})
    stubs.stub("kms").add_client_error("describe_key", "NotFoundException", expected_params={"KeyId": ANY})
    stubs.stub("sqs").add_client_error(
        "get_queue_url",
        "AWS.SimpleQueueService.NonExistentQueue",
        expected_params={"QueueName": "gpu-autostop-dlq"},
    )


def test_brand_new_account_output(stubs: Stubs, capsys: pytest.CaptureFixture[str]) -> None:
    brand_new_account(stubs)
    argv = [
        "--no-terraform",
        "--name",
        "gpu-autostop",
        "--region",
        REGION,
        "--instance-type",
        "g4dn.xlarge",
        "--ami-ssm-parameter",
        AMI_PARAM,
        "--alert-emails",
        "you@example.com",
        "--reserved-concurrency",
        "start=2,status=4,stop=2",
    ]

    code = preflight.main(argv, clients=stubs)

    assert code == 1
    assert capsys.readouterr().out == NEW_ACCOUNT_OUTPUT


def test_main_exit_codes(
    stubs: Stubs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert preflight.main(["--no-terraform", "--region", REGION], clients=stubs) == 2  # no name, no type
    assert "name must be a non-empty string" in capsys.readouterr().err
    assert preflight.main(["--no-terraform", "--reserved-concurrency", "start=x"], clients=stubs) == 2

    stubs.stub("sts").add_response(
        "get_caller_identity", {"Account": "1", "Arn": "arn:aws:iam::1:user/me", "UserId": "x"}
    )
    monkeypatch.setattr(preflight, "CHECKS", (preflight.check_alert_emails,))
    argv = ["--no-terraform", "--name", "n", "--region", REGION, "--instance-type", "g4dn.xlarge"]
    assert preflight.main(argv, clients=stubs) == 0  # a warning does not fail
    out = capsys.readouterr().out
    assert "WARN  alert emails" in out
    assert "preflight: 0 failed, 1 warning(s), 0 not checked." in out


# --- the settings, as Terraform sees them -------------------------------------------------------


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_settings_offline_without_credentials(tmp_path: Path) -> None:
    tf = tmp_path / "terraform"
    shutil.copytree(
        ROOT / "terraform",
        tf,
        ignore=shutil.ignore_patterns(".terraform", "tests", "*.tfstate*", "terraform.tfvars"),
    )
    (tf / "terraform.tfvars").write_text(
        'name = "gpu-test"\nregion = "eu-west-1"\nmarket = "on-demand"\nalert_emails = ["a@example.com"]\n'
        'fallback_instance_types = ["g5.xlarge"]\n'
        "reserved_concurrency = { start = -1, status = -1, stop = -1 }\n"
        'cost_report_schedule = "cron(0 7 ? * MON *)"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    mirror = Path(os.environ.get("TF_MIRROR", "/opt/tf-plugins"))
    init = ["terraform", f"-chdir={tf}", "init", "-input=false", "-backend=false"]
    if (mirror / "registry.terraform.io" / "hashicorp" / "aws").exists():
        init.append(f"-plugin-dir={mirror}")
    subprocess.run(init, check=True, capture_output=True, env=env, timeout=300)

    old_env = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        raw = preflight.terraform_settings(tf)
    finally:
        os.environ.clear()
        os.environ.update(old_env)

    assert preflight.terraform_deployed(tf) is False  # no state yet: leftovers are checked
    s = Settings.from_mapping(raw)
    assert (s.name, s.region, s.market, s.instance_type) == (
        "gpu-test",
        "eu-west-1",
        "on-demand",
        "g4dn.xlarge",
    )
    assert s.fallback_instance_types == ("g5.xlarge",)
    assert s.alert_emails == ("a@example.com",)
    assert s.reserved_concurrency == {"start": -1, "status": -1, "stop": -1, "cost_report": -1, "budget": -1}
    assert s.root_volume_size_gb == 100
    assert s.ami_id is None
    assert s.ami_ssm_parameter.startswith("/aws/service/")


def test_settings_distrust_bad_values() -> None:
    good = {"name": "n", "region": REGION, "instance_type": "g4dn.xlarge"}
    assert Settings.from_mapping(good).market == "on-demand"
    for bad in (
        {"market": "reserved"},
        {"root_volume_size_gb": "100"},
        {"root_volume_size_gb": 1.5},
        {"alert_emails": "a@example.com"},
        {"reserved_concurrency": {"start": "2"}},
        {"reserved_concurrency": {"other": 2}},
        {"hard_cap_usd": True},
        {"enable_cost_report": "yes"},
    ):
        with pytest.raises(preflight.SettingsError):
            Settings.from_mapping({**good, **bad})
