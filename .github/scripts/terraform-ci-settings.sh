#!/usr/bin/env bash
# Used by .github/workflows/plan.yml and deploy.yml before `make plan` / `make deploy`: refuses to
# go on (::error:: lines naming exactly what to set) unless the run has a remote state backend and
# the user's settings, then writes them where Terraform reads them:
#   terraform/backend_override.tf   S3 backend with native locking (use_lockfile) from
#                                   TF_STATE_BUCKET, TF_STATE_KEY, TF_STATE_REGION
#   terraform/terraform.tfvars      the TFVARS secret, if set (else TF_VAR_allowed_cidrs and
#                                   TF_VAR_alert_emails from repository variables)
#   $GITHUB_ENV                     TF_VAR_region from AWS_REGION (and the two TF_VAR_ lists)
# Without this a CI apply starts from an empty state every run (a second stack next to the first)
# and deploys with no allowed_cidrs and no alert emails. Inputs come from the environment only.
# Locking: "This backend also supports state locking which can be enabled by setting the
# use_lockfile argument to true." (Terraform docs, "Backend Type: s3",
# https://developer.hashicorp.com/terraform/language/backend/s3)
set -euo pipefail

errors=0
fail() {
  echo "::error::$1"
  errors=$((errors + 1))
}

: "${TF_STATE_BUCKET:=}" "${TF_STATE_KEY:=}" "${TF_STATE_REGION:=}" "${AWS_REGION:=}"
: "${TFVARS:=}" "${ALLOWED_CIDRS:=}" "${ALERT_EMAILS:=}"

# S3 bucket names: 3-63 lower-case letters, digits, dots and hyphens.
if [[ -z "$TF_STATE_BUCKET" ]]; then
  fail "No remote state: set the repository variable TF_STATE_BUCKET (an existing, versioned, private S3 bucket for the Terraform state). Without it every run would start from an empty state and create a second stack."
elif [[ ! "$TF_STATE_BUCKET" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]]; then
  fail "TF_STATE_BUCKET is not an S3 bucket name: '$TF_STATE_BUCKET'."
fi
if [[ -z "$TF_STATE_KEY" ]]; then
  fail "Set the repository variable TF_STATE_KEY, the state object's key, e.g. gpu-autostop/terraform.tfstate."
elif [[ ! "$TF_STATE_KEY" =~ ^[A-Za-z0-9][A-Za-z0-9._/-]{0,1000}$ ]]; then
  fail "TF_STATE_KEY must be letters, digits and . _ / -, e.g. gpu-autostop/terraform.tfstate: '$TF_STATE_KEY'."
fi
if [[ -z "$AWS_REGION" ]]; then
  fail "Set the repository variable AWS_REGION, the region to deploy into (it becomes TF_VAR_region and the credentials' region), e.g. us-east-1."
elif [[ ! "$AWS_REGION" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]$ ]]; then
  fail "AWS_REGION is not a region name: '$AWS_REGION'."
fi
state_region="${TF_STATE_REGION:-$AWS_REGION}"
if [[ -n "$state_region" && ! "$state_region" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]$ ]]; then
  fail "TF_STATE_REGION is not a region name: '$state_region'."
fi
if [[ -z "$TFVARS" && ( -z "$ALLOWED_CIDRS" || -z "$ALERT_EMAILS" ) ]]; then
  fail "No settings: set the secret TFVARS to the content of your terraform/terraform.tfvars, or the repository variables ALLOWED_CIDRS (e.g. [\"203.0.113.7/32\"]) and ALERT_EMAILS (e.g. [\"you@example.com\"]). Without them CI deploys a ComfyUI nobody can reach and alerts nobody reads."
fi
if (( errors > 0 )); then
  echo "::error::Refusing to run terraform: ${errors} setting(s) missing or malformed (docs/operations.md, 'Deploy with CI')."
  exit 1
fi

cat > terraform/backend_override.tf <<HCL
# Written by .github/scripts/terraform-ci-settings.sh for this CI run; not committed.
terraform {
  backend "s3" {
    bucket       = "${TF_STATE_BUCKET}"
    key          = "${TF_STATE_KEY}"
    region       = "${state_region}"
    encrypt      = true
    use_lockfile = true
  }
}
HCL

if [[ -n "$TFVARS" ]]; then
  (umask 077 && printf '%s\n' "$TFVARS" > terraform/terraform.tfvars)
  echo "Settings: the TFVARS secret, written to terraform/terraform.tfvars."
else
  # Multi-line-safe: GitHub's NAME<<DELIMITER syntax for $GITHUB_ENV.
  delimiter="EOF_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  {
    printf 'TF_VAR_allowed_cidrs<<%s\n%s\n%s\n' "$delimiter" "$ALLOWED_CIDRS" "$delimiter"
    printf 'TF_VAR_alert_emails<<%s\n%s\n%s\n' "$delimiter" "$ALERT_EMAILS" "$delimiter"
  } >> "$GITHUB_ENV"
  echo "Settings: ALLOWED_CIDRS and ALERT_EMAILS as TF_VAR_allowed_cidrs and TF_VAR_alert_emails."
fi
echo "TF_VAR_region=${AWS_REGION}" >> "$GITHUB_ENV"
echo "State: s3://${TF_STATE_BUCKET}/${TF_STATE_KEY} (${state_region}, S3 native locking)."
