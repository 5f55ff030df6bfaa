"""Preflight (`make preflight`, also the first step of `make deploy`): what will stop a deploy, in seconds.

Each check is a function ``check_*(clients, settings) -> list[Result]``: it calls AWS with the user's
credentials through ``clients`` (a mapping from service name to a boto3 client) and returns one
result per finding: ``ok``, ``warn`` (printed, does not fail), ``fail`` (exit 1) or ``unknown``
("could not check, because ..."; an AccessDenied or any other client error never fails the run).

The settings are the Terraform configuration as Terraform sees it (variables.tf defaults and
terraform.tfvars, through ``terraform console``, which works offline and without credentials);
command-line flags override single values. Self-contained: only boto3/botocore and the standard library,
so the minimal deploy environment (requirements-deploy.txt) runs it.

AWS behaviour relied on (AWS documentation):
- STS GetCallerIdentity: "No permissions are required to perform this operation" (STS API Reference),
  so an error there means the credentials themselves are refused: a failure, not "could not check".
- vCPU quotas: EC2 On-Demand and Spot limits are counted in vCPUs per instance family and Region
  ("EC2 On-Demand Instance limits", Amazon EC2 User Guide). The quota codes are Service Quotas' own
  (`aws service-quotas list-service-quotas --service-code ec2`): L-DB2E81BA "Running On-Demand G and
  VT instances", L-3819A6DF "All G and VT Spot Instance Requests", L-417A185B / L-7212CCBC for P,
  L-1216C47A / L-34B43A08 for the standard families.
- Lambda: "You can reserve up to the Unreserved account concurrency value that is shown, minus 100 for
  functions that don't have reserved concurrency" ("Configuring reserved concurrency", Lambda Developer
  Guide); "New AWS accounts have reduced concurrency and memory quotas" ("Lambda quotas"); the limits
  come from GetAccountSettings (AccountLimit.ConcurrentExecutions, UnreservedConcurrentExecutions).
  The concurrency quota is L-B99A9384 "Concurrent executions".
- Spot: "If you use the AWS CLI or an API to request a Spot Instance, you must first make sure that"
  the service-linked role AWSServiceRoleForEC2Spot exists ("Service-linked role for Spot Instance
  requests", Amazon EC2 User Guide); it is created with
  `aws iam create-service-linked-role --aws-service-name spot.amazonaws.com`.
- Cost Explorer: one endpoint, us-east-1 (Cost Explorer API Reference); GetCostAndUsage raises
  DataUnavailableException when there is no data; each request costs $0.01 (AWS Cost Management
  pricing), so this check makes exactly one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

ROOT = Path(__file__).resolve().parent.parent
TF_DIR = ROOT / "terraform"
Status = Literal["ok", "warn", "fail", "unknown"]
FUNCTIONS = ("start", "status", "stop", "cost_report", "budget")
SPOT_ROLE = "AWSServiceRoleForEC2Spot"
LAMBDA_UNRESERVED_MINIMUM = 100
LAMBDA_CONCURRENCY_QUOTA = "L-B99A9384"
NEW_ACCOUNT_LAMBDA_LIMIT = 10

# Service Quotas codes per instance family: (on-demand, spot) and the quota's name.
QUOTAS: dict[str, tuple[str, str, str]] = {
    "g": ("L-DB2E81BA", "L-3819A6DF", "G and VT"),
    "vt": ("L-DB2E81BA", "L-3819A6DF", "G and VT"),
    "p": ("L-417A185B", "L-7212CCBC", "P"),
    **{f: ("L-1216C47A", "L-34B43A08", "Standard (A, C, D, H, I, M, R, T, Z)") for f in "acdhimrtz"},
}

# The variables preflight reads, as one `terraform console` expression.
TF_EXPRESSION = (
    "jsonencode({"
    + ", ".join(
        f"{v} = var.{v}"
        for v in (
            "name",
            "region",
            "project_tag",
            "instance_type",
            "fallback_instance_types",
            "market",
            "subnet_id",
            "availability_zone",
            "root_volume_size_gb",
            "ami_id",
            "ami_ssm_parameter",
            "alert_emails",
            "reserved_concurrency",
            "enable_cost_report",
            "budget_filter_project_tag",
            "hard_cap_usd",
        )
    )
    + "})"
)


class SettingsError(ValueError):
    """A setting is missing or has the wrong type."""


@dataclass(frozen=True)
class Settings:
    name: str
    region: str
    instance_type: str
    market: str = "on-demand"
    fallback_instance_types: tuple[str, ...] = ()
    project_tag: str = "gpu-autostop"
    subnet_id: str | None = None
    availability_zone: str | None = None
    root_volume_size_gb: int = 100
    ami_id: str | None = None
    ami_ssm_parameter: str = ""
    alert_emails: tuple[str, ...] = ()
    reserved_concurrency: Mapping[str, int] = field(default_factory=dict)
    enable_cost_report: bool = True
    budget_filter_project_tag: bool = False
    hard_cap_usd: float | None = None
    # The Terraform state already holds resources: names that exist are the stack's own.
    deployed: bool = False

    @property
    def spot(self) -> bool:
        return self.market == "spot"

    def function_names(self) -> dict[str, str]:
        """The functions this configuration creates (key -> name), as terraform/main.tf names them."""
        keys = ["start", "status", "stop"]
        if self.enable_cost_report:
            keys.append("cost_report")
        if self.hard_cap_usd is not None:
            keys.append("budget")
        return {k: f"{self.name}-{k.replace('_', '-')}" for k in keys}

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Settings:
        """Validate raw values (Terraform's or the flags'); SettingsError names the first bad one."""

        def text(key: str, optional: bool = False) -> str | None:
            value = raw.get(key)
            if value is None and optional:
                return None
            if not isinstance(value, str) or not value:
                raise SettingsError(f"{key} must be a non-empty string, got {value!r}")
            return value

        def texts(key: str) -> tuple[str, ...]:
            value = raw.get(key) or []
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
                raise SettingsError(f"{key} must be a list of strings, got {value!r}")
            return tuple(value)

        def flag(key: str, default: bool) -> bool:
            value = raw.get(key, default)
            if not isinstance(value, bool):
                raise SettingsError(f"{key} must be true or false, got {value!r}")
            return value

        market = text("market", optional=True) or "on-demand"
        if market not in ("on-demand", "spot"):
            raise SettingsError(f'market must be "on-demand" or "spot", got {market!r}')
        size = raw.get("root_volume_size_gb", 100)
        if isinstance(size, bool) or not isinstance(size, int | float) or size != int(size) or size < 1:
            raise SettingsError(f"root_volume_size_gb must be a whole number of GiB, got {size!r}")
        reserved = raw.get("reserved_concurrency") or {}
        if not isinstance(reserved, Mapping) or not all(
            k in FUNCTIONS and isinstance(v, int | float) and not isinstance(v, bool) and v == int(v)
            for k, v in reserved.items()
        ):
            raise SettingsError(f"reserved_concurrency must map {'/'.join(FUNCTIONS)} to numbers")
        cap = raw.get("hard_cap_usd")
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int | float)):
            raise SettingsError(f"hard_cap_usd must be a number or null, got {cap!r}")
        return cls(
            name=str(text("name")),
            region=str(text("region")),
            instance_type=str(text("instance_type")),
            market=market,
            fallback_instance_types=texts("fallback_instance_types"),
            project_tag=text("project_tag", optional=True) or "gpu-autostop",
            subnet_id=text("subnet_id", optional=True),
            availability_zone=text("availability_zone", optional=True),
            root_volume_size_gb=int(size),
            ami_id=text("ami_id", optional=True),
            ami_ssm_parameter=text("ami_ssm_parameter", optional=True) or "",
            alert_emails=texts("alert_emails"),
            reserved_concurrency={k: int(v) for k, v in reserved.items()},
            enable_cost_report=flag("enable_cost_report", True),
            budget_filter_project_tag=flag("budget_filter_project_tag", False),
            hard_cap_usd=None if cap is None else float(cap),
            deployed=flag("deployed", False),
        )


@dataclass(frozen=True)
class Result:
    check: str
    status: Status
    message: str
    fix: str = ""

    def line(self) -> str:
        label = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "unknown": "??  "}[self.status]
        text = f"{label}  {self.check}: {self.message}"
        return f"{text} Fix: {self.fix}" if self.fix else text


Clients = Mapping[str, Any]
Check = Callable[[Clients, Settings], list[Result]]


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def could_not(check: str, exc: Exception) -> Result:
    if isinstance(exc, ClientError):
        reason = f"{error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}".rstrip(": ")
    else:
        reason = str(exc)
    return Result(check, "unknown", f"could not check, because {reason}")


# --- checks -----------------------------------------------------------------------------------------


def check_identity(clients: Clients, s: Settings) -> list[Result]:
    """Credentials and account. GetCallerIdentity needs no permission: any error means bad credentials."""
    fix = "configure credentials (aws configure, AWS_PROFILE, or aws sso login) and run again"
    try:
        who = clients["sts"].get_caller_identity()
    except NoCredentialsError:
        return [Result("credentials", "fail", "no AWS credentials found.", fix)]
    except ClientError as exc:
        return [Result("credentials", "fail", f"AWS refuses the credentials ({error_code(exc)}).", fix)]
    return [Result("credentials", "ok", f"account {who['Account']} as {who['Arn']}.")]


def check_region(clients: Clients, s: Settings) -> list[Result]:
    regions = clients["ec2"].describe_regions(AllRegions=True)["Regions"]
    found = next((r for r in regions if r.get("RegionName") == s.region), None)
    if found is None:
        return [
            Result("region", "fail", f"{s.region} is not an AWS region.", "set region in terraform.tfvars")
        ]
    status = found.get("OptInStatus", "opt-in-not-required")
    if status in ("opt-in-not-required", "opted-in"):
        return [Result("region", "ok", f"{s.region} is enabled ({status}).")]
    fix = f"aws account enable-region --region-name {s.region} (or the console: Account, AWS Regions)"
    return [Result("region", "fail", f"{s.region} is not enabled for this account ({status}).", fix)]


def _zones_offering(ec2: Any, instance_type: str) -> list[str]:
    pages = ec2.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [instance_type]}]
    )
    return sorted({o["Location"] for page in pages for o in page.get("InstanceTypeOfferings", [])})


def check_offerings(clients: Clients, s: Settings) -> list[Result]:
    """instance_type and each fallback type are offered in the instance's zone: the subnet's,
    availability_zone, or the first zone offering instance_type (terraform/modules/instance picks
    sort(offerings)[0] the same way)."""
    ec2 = clients["ec2"]
    types = list(dict.fromkeys((s.instance_type, *s.fallback_instance_types)))
    offered = {t: _zones_offering(ec2, t) for t in types}
    zone = s.availability_zone
    if s.subnet_id:
        try:
            zone = str(ec2.describe_subnets(SubnetIds=[s.subnet_id])["Subnets"][0]["AvailabilityZone"])
        except ClientError as exc:
            if error_code(exc) == "InvalidSubnetID.NotFound":
                return [
                    Result(
                        "subnet",
                        "fail",
                        f"subnet {s.subnet_id} does not exist in {s.region}.",
                        "set subnet_id to a public subnet of this region, or null for a new VPC",
                    )
                ]
            raise
    elif zone is None and offered[s.instance_type]:
        zone = offered[s.instance_type][0]
    results = []
    for i, itype in enumerate(types):
        zones = offered[itype]
        primary = i == 0
        name = "instance type" if primary else "fallback type"
        if not zones:
            fix = "choose a type this region offers (aws ec2 describe-instance-type-offerings)"
            results.append(
                Result(name, "fail" if primary else "warn", f"{itype} is not offered in {s.region}.", fix)
            )
        elif zone is not None and zone not in zones:
            fix = (
                f"set availability_zone or subnet_id to one of {', '.join(zones)}"
                if primary
                else f"remove {itype} from fallback_instance_types (the instance cannot change zone)"
            )
            results.append(
                Result(
                    name,
                    "fail" if primary else "warn",
                    f"{itype} is not offered in {zone} (only {', '.join(zones)}).",
                    fix,
                )
            )
        else:
            results.append(Result(name, "ok", f"{itype} is offered in {zone or s.region}."))
    return results


def _family(instance_type: str) -> str:
    prefix = instance_type.split(".", 1)[0]
    letters = ""
    for ch in prefix:
        if not ch.isalpha():
            break
        letters += ch
    return "vt" if letters == "vt" else letters[:1]


def check_vcpu_quota(clients: Clients, s: Settings) -> list[Result]:
    """The vCPU quota of each family used covers the largest instance of it (one instance runs at a time)."""
    types = [s.instance_type] if s.spot else [s.instance_type, *s.fallback_instance_types]
    described = clients["ec2"].describe_instance_types(InstanceTypes=sorted(set(types)))["InstanceTypes"]
    vcpus = {t["InstanceType"]: int(t["VCpuInfo"]["DefaultVCpus"]) for t in described}
    needs: dict[str, tuple[str, int, str]] = {}  # quota code -> (family label, vCPUs, type)
    results = []
    for itype in types:
        family = QUOTAS.get(_family(itype))
        if family is None or itype not in vcpus:
            results.append(
                Result("vCPU quota", "unknown", f"could not check, because no quota is known for {itype}.")
            )
            continue
        code = family[1] if s.spot else family[0]
        if code not in needs or needs[code][1] < vcpus[itype]:
            needs[code] = (family[2], vcpus[itype], itype)
    market = "Spot" if s.spot else "On-Demand"
    for code, (label, need, itype) in needs.items():
        title = f"All {label} Spot Instance Requests" if s.spot else f"Running On-Demand {label} instances"
        try:
            quota = clients["service-quotas"].get_service_quota(ServiceCode="ec2", QuotaCode=code)
        except ClientError as exc:
            results.append(could_not("vCPU quota", exc))
            continue
        value = float(quota["Quota"]["Value"])
        if value < need:
            fix = (
                f"aws service-quotas request-service-quota-increase --region {s.region} --service-code ec2 "
                f"--quota-code {code} --desired-value {need} (or the console: Service Quotas, Amazon EC2, "
                f'"{title}"; new accounts wait hours to days)'
            )
            results.append(
                Result(
                    "vCPU quota",
                    "fail",
                    f'"{title}" ({code}) is {value:g} vCPUs in {s.region}; {itype} needs {need}.',
                    fix,
                )
            )
        else:
            results.append(
                Result(
                    "vCPU quota",
                    "ok",
                    f'"{title}" ({code}) is {value:g} vCPUs; {itype} needs {need} ({market}, '
                    "shared with the account's other running instances).",
                )
            )
    return results


def check_spot_role(clients: Clients, s: Settings) -> list[Result]:
    if not s.spot:
        return []
    try:
        clients["iam"].get_role(RoleName=SPOT_ROLE)
    except ClientError as exc:
        if error_code(exc) != "NoSuchEntity":
            raise
        return [
            Result(
                "spot role",
                "fail",
                f"the service-linked role {SPOT_ROLE} does not exist; "
                "EC2 needs it before an API request for a Spot Instance.",
                "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com",
            )
        ]
    return [Result("spot role", "ok", f"{SPOT_ROLE} exists.")]


def check_lambda_concurrency(clients: Clients, s: Settings) -> list[Result]:
    """The configured reservations fit in what the account may reserve (unreserved - 100)."""
    lam = clients["lambda"]
    limits = lam.get_account_settings()["AccountLimit"]
    total = int(limits["ConcurrentExecutions"])
    unreserved = int(limits["UnreservedConcurrentExecutions"])
    names = s.function_names()
    wanted = {k: v for k, v in s.reserved_concurrency.items() if k in names and v != -1}
    # A redeploy: the stack's own current reservations are already taken out of "unreserved".
    own = 0
    for key in wanted:
        try:
            own += int(
                lam.get_function_concurrency(FunctionName=names[key]).get("ReservedConcurrentExecutions") or 0
            )
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
    available = max(unreserved + own - LAMBDA_UNRESERVED_MINIMUM, 0)
    asked = sum(wanted.values())
    results = []
    detail = ", ".join(f"{k} {v}" for k, v in sorted(wanted.items())) or "none"
    if asked > available:
        results.append(
            Result(
                "Lambda concurrency",
                "fail",
                f"reserved_concurrency asks for {asked} ({detail}) but the account (limit {total}, "
                f"unreserved {unreserved}) may reserve only {available}: Lambda keeps "
                f"{LAMBDA_UNRESERVED_MINIMUM} unreserved.",
                "set reserved_concurrency = { start = -1, status = -1, stop = -1 } in terraform.tfvars, "
                "or ask for more: aws service-quotas request-service-quota-increase "
                f"--region {s.region} --service-code lambda --quota-code {LAMBDA_CONCURRENCY_QUOTA} "
                "--desired-value 1000",
            )
        )
    else:
        results.append(
            Result(
                "Lambda concurrency",
                "ok",
                f"reservations {asked} ({detail}) fit; the account may reserve {available}.",
            )
        )
    if total <= NEW_ACCOUNT_LAMBDA_LIMIT:
        results.append(
            Result(
                "Lambda concurrency",
                "warn",
                f"the account's concurrency limit is {total} (a new account): every function of the account "
                "shares it, and no reservation is possible.",
                "ask for more (Service Quotas, AWS Lambda, "
                f'"Concurrent executions", {LAMBDA_CONCURRENCY_QUOTA})',
            )
        )
    return results


def check_ami(clients: Clients, s: Settings) -> list[Result]:
    ami_id = s.ami_id
    if ami_id is None:
        try:
            ami_id = clients["ssm"].get_parameter(Name=s.ami_ssm_parameter)["Parameter"]["Value"]
        except ClientError as exc:
            if error_code(exc) != "ParameterNotFound":
                raise
            return [
                Result(
                    "AMI",
                    "fail",
                    f"the SSM parameter {s.ami_ssm_parameter} does not exist in {s.region}.",
                    "set ami_ssm_parameter to one this region has, or ami_id",
                )
            ]
    try:
        images = clients["ec2"].describe_images(ImageIds=[ami_id])["Images"]
    except ClientError as exc:
        if not error_code(exc).startswith("InvalidAMIID"):
            raise
        images = []
    if not images:
        return [
            Result(
                "AMI",
                "fail",
                f"{ami_id} does not exist (or is not visible) in {s.region}.",
                "set ami_id to an AMI of this region, or null for the default",
            )
        ]
    image = images[0]
    root = next(
        (
            m
            for m in image.get("BlockDeviceMappings", [])
            if m.get("DeviceName") == image.get("RootDeviceName") and "Ebs" in m
        ),
        None,
    )
    size = root["Ebs"].get("VolumeSize") if root else None
    if size is None:
        return [Result("AMI", "unknown", f"could not check, because {ami_id} shows no root snapshot size.")]
    if int(size) > s.root_volume_size_gb:
        return [
            Result(
                "AMI",
                "fail",
                f"{ami_id}'s root snapshot is {size} GiB, root_volume_size_gb is {s.root_volume_size_gb}.",
                f"set root_volume_size_gb = {size} or more",
            )
        ]
    return [
        Result(
            "AMI",
            "ok",
            f"{ami_id} ({image.get('Name', '?')}): root snapshot {size} GiB fits "
            f"{s.root_volume_size_gb} GiB.",
        )
    ]


def check_cost_explorer(clients: Clients, s: Settings, today: dt.date | None = None) -> list[Result]:
    if not s.enable_cost_report and not s.budget_filter_project_tag:
        return []
    ce = clients["ce"]
    today = today or dt.datetime.now(dt.UTC).date()
    results = []
    try:
        ce.get_cost_and_usage(
            TimePeriod={"Start": (today - dt.timedelta(days=1)).isoformat(), "End": today.isoformat()},
            Granularity="DAILY",
            Metrics=["UnblendedCost"],
        )
        results.append(Result("Cost Explorer", "ok", "enabled (the weekly cost report can read it)."))
    except ClientError as exc:
        code = error_code(exc)
        if code not in ("DataUnavailableException", "AccessDeniedException", "AccessDenied"):
            raise
        results.append(
            Result(
                "Cost Explorer",
                "warn",
                f"not enabled, or not readable with these credentials ({code}); "
                "the weekly report will say so.",
                "enable it in the console (Billing and Cost Management, Cost Explorer); "
                "data appears within 24 hours",
            )
        )
    if s.budget_filter_project_tag:
        try:
            tags = ce.list_cost_allocation_tags(TagKeys=["Project"], Type="UserDefined").get(
                "CostAllocationTags", []
            )
        except ClientError as exc:
            results.append(could_not("cost-allocation tag", exc))
            return results
        status = next((t.get("Status") for t in tags if t.get("TagKey") == "Project"), None)
        if status == "Active":
            results.append(Result("cost-allocation tag", "ok", "Project is an active cost-allocation tag."))
        else:
            results.append(
                Result(
                    "cost-allocation tag",
                    "warn",
                    f"budget_filter_project_tag is on but Project is {status or 'not known to Billing yet'}: "
                    "the budgets and the report see $0 until it is active.",
                    "activate Project in Billing, Cost allocation tags (after the first deploy tags "
                    "resources), or set budget_filter_project_tag = false",
                )
            )
    return results


def check_alert_emails(clients: Clients, s: Settings) -> list[Result]:
    if s.alert_emails:
        return [
            Result("alert emails", "ok", f"{len(s.alert_emails)} address(es); each must confirm by email.")
        ]
    return [
        Result(
            "alert emails",
            "warn",
            "alert_emails is empty: no one gets stop notices, alarms or budget alerts.",
            'set alert_emails = ["you@example.com"] in terraform.tfvars',
        )
    ]


def _exists(call: Callable[[], Any], missing: Sequence[str]) -> bool:
    try:
        call()
    except ClientError as exc:
        if error_code(exc) in missing:
            return False
        raise
    return True


def check_leftovers(clients: Clients, s: Settings) -> list[Result]:
    """Nothing named like this stack exists outside the Terraform state (a half-finished earlier deploy)."""
    if s.deployed:
        return [Result("leftovers", "ok", "the Terraform state holds this stack; its names are its own.")]
    functions = s.function_names()
    found: list[str] = []
    lam, iam, ssm, logs = clients["lambda"], clients["iam"], clients["ssm"], clients["logs"]
    for fn in functions.values():
        if _exists(partial(lam.get_function, FunctionName=fn), ["ResourceNotFoundException"]):
            found.append(f"Lambda function {fn}")
        role = f"{fn}-lambda"
        if _exists(partial(iam.get_role, RoleName=role), ["NoSuchEntity"]):
            found.append(f"IAM role {role}")
        group = f"/aws/lambda/{fn}"
        groups = logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
        if any(g.get("logGroupName") == group for g in groups):
            found.append(f"log group {group}")
    for param in ("agent-state", "lease", "ledger", "cap"):
        pname = f"/{s.name}/{param}"
        if _exists(partial(ssm.get_parameter, Name=pname), ["ParameterNotFound"]):
            found.append(f"SSM parameter {pname}")
    topics = {f"{s.name}-alerts"} | ({f"{s.name}-hard-cap"} if s.hard_cap_usd is not None else set())
    for page in clients["sns"].get_paginator("list_topics").paginate():
        found += [
            f"SNS topic {t['TopicArn']}"
            for t in page.get("Topics", [])
            if t["TopicArn"].rsplit(":", 1)[-1] in topics
        ]
    alias = f"alias/{s.name}"
    if _exists(partial(clients["kms"].describe_key, KeyId=alias), ["NotFoundException"]):
        found.append(f"KMS alias {alias}")
    if _exists(
        partial(clients["sqs"].get_queue_url, QueueName=f"{s.name}-dlq"),
        ["AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"],
    ):
        found.append(f"SQS queue {s.name}-dlq")
    if found:
        return [
            Result(
                "leftovers",
                "fail",
                f"{len(found)} resource(s) named like this stack exist but the "
                f"Terraform state does not hold them: {'; '.join(found)}.",
                "import them (terraform import) or delete them, or choose another name",
            )
        ]
    return [Result("leftovers", "ok", f"nothing named {s.name}-* exists yet.")]


CHECKS: tuple[Check, ...] = (
    check_region,
    check_offerings,
    check_vcpu_quota,
    check_spot_role,
    check_lambda_concurrency,
    check_ami,
    check_cost_explorer,
    check_alert_emails,
    check_leftovers,
)


def run_checks(clients: Clients, s: Settings, checks: Sequence[Check] | None = None) -> list[Result]:
    """Identity first (nothing works without it), then every check; errors become "could not check"."""
    results = check_identity(clients, s)
    if results[0].status == "fail":
        return results
    for check in CHECKS if checks is None else checks:
        name = check.__name__.removeprefix("check_").replace("_", " ")
        try:
            results += check(clients, s)
        except (ClientError, BotoCoreError) as exc:
            results.append(could_not(name, exc))
    return results


# --- settings from Terraform, clients, CLI ----------------------------------------------------------


def terraform_settings(tf_dir: Path = TF_DIR) -> dict[str, Any]:
    """The variables as Terraform evaluates them (defaults + terraform.tfvars), via `terraform console`."""
    result = subprocess.run(
        ["terraform", f"-chdir={tf_dir}", "console"],
        input=TF_EXPRESSION + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        raise SettingsError(f"terraform console failed: {(result.stderr or result.stdout).strip()[-2000:]}")
    # The console prints the HCL string literal of the JSON; HCL escapes ${ and %{ by doubling.
    literal = json.loads(result.stdout.strip())
    parsed = json.loads(literal.replace("$${", "${").replace("%%{", "%{"))
    if not isinstance(parsed, dict):
        raise SettingsError(f"terraform console gave {parsed!r}, not an object")
    return parsed


def terraform_deployed(tf_dir: Path = TF_DIR) -> bool:
    """Whether the state already holds resources (False when there is no state or it cannot be read)."""
    try:
        result = subprocess.run(
            ["terraform", f"-chdir={tf_dir}", "state", "list"],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


class LazyClients(Mapping[str, Any]):
    """boto3 clients made on first use: Cost Explorer and IAM in us-east-1, the rest in the region."""

    GLOBAL: ClassVar[dict[str, str]] = {"ce": "us-east-1", "iam": "us-east-1"}

    def __init__(self, region: str, session: Any = None) -> None:
        self._region = region
        self._session: Any = session or boto3.session.Session()
        self._clients: dict[str, Any] = {}

    def __getitem__(self, service: str) -> Any:
        if service not in self._clients:
            region = self.GLOBAL.get(service, self._region)
            self._clients[service] = self._session.client(service, region_name=region)
        return self._clients[service]

    def __iter__(self) -> Iterator[str]:
        return iter(self._clients)

    def __len__(self) -> int:
        return len(self._clients)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-terraform", action="store_true", help="do not read terraform/; give every setting")
    p.add_argument("--name")
    p.add_argument("--region")
    p.add_argument("--instance-type")
    p.add_argument("--fallback-instance-types", help="comma-separated")
    p.add_argument("--market", choices=["on-demand", "spot"])
    p.add_argument("--subnet-id")
    p.add_argument("--availability-zone")
    p.add_argument("--root-volume-size-gb", type=int)
    p.add_argument("--ami-id")
    p.add_argument("--ami-ssm-parameter")
    p.add_argument("--alert-emails", help="comma-separated")
    p.add_argument("--reserved-concurrency", help="e.g. start=2,status=4,stop=2 (-1: none)")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace, raw: Mapping[str, Any]) -> Settings:
    merged = dict(raw)
    for key in (
        "name",
        "region",
        "instance_type",
        "market",
        "subnet_id",
        "availability_zone",
        "root_volume_size_gb",
        "ami_id",
        "ami_ssm_parameter",
    ):
        if getattr(args, key) is not None:
            merged[key] = getattr(args, key)
    for key in ("fallback_instance_types", "alert_emails"):
        if getattr(args, key) is not None:
            merged[key] = [v.strip() for v in getattr(args, key).split(",") if v.strip()]
    if args.reserved_concurrency is not None:
        pairs = [p.partition("=") for p in args.reserved_concurrency.split(",") if p.strip()]
        try:
            merged["reserved_concurrency"] = {k.strip(): int(v) for k, _, v in pairs}
        except ValueError as exc:
            raise SettingsError(f"--reserved-concurrency: {exc}") from exc
    return Settings.from_mapping(merged)


def report(results: Sequence[Result], out: Any = None) -> int:
    out = out or sys.stdout
    for r in results:
        print(r.line(), file=out)
    failed = sum(r.status == "fail" for r in results)
    warned = sum(r.status == "warn" for r in results)
    unknown = sum(r.status == "unknown" for r in results)
    print(f"preflight: {failed} failed, {warned} warning(s), {unknown} not checked.", file=out)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None, clients: Clients | None = None) -> int:
    args = parse_args(argv)
    try:
        raw: dict[str, Any] = {} if args.no_terraform else terraform_settings()
        if not args.no_terraform:
            raw["deployed"] = terraform_deployed()
        settings = settings_from(args, raw)
    except (SettingsError, OSError, subprocess.TimeoutExpired, ValueError) as exc:
        print(f"preflight: cannot read the settings: {exc}", file=sys.stderr)
        return 2
    print(f"preflight for {settings.name} in {settings.region} ({settings.instance_type}, {settings.market})")
    return report(run_checks(clients or LazyClients(settings.region), settings))


if __name__ == "__main__":
    raise SystemExit(main())
