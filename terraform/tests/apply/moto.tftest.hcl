# Apply-then-destroy against a moto server. Run it with `make tf-apply-test`, which starts the
# server on a free port and passes its URL as -var=moto_endpoint=... (there is deliberately no
# default: a stray server on a well-known port must never be the target).

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  default_tags {
    tags = { Project = "gpu-autostop" }
  }
}

run "apply" {
  variables {
    ami_id             = "ami-1e749f67" # one of the AMIs moto ships
    agent_archive_path = "tests/fixtures/placeholder-artifact.txt"
    allowed_cidrs      = ["203.0.113.7/32"]
    alert_emails       = ["owner@example.com"]
  }
}

# ---- Overrides: only what moto cannot create (README.md, "Apply test against moto", says why) ----

override_resource {
  target = module.cost_guard.aws_budgets_budget.monthly
}

override_resource {
  target = module.instance.aws_s3_bucket_policy.artifacts
}

override_resource {
  target = module.idle_alarms.aws_cloudwatch_composite_alarm.idle
  values = {
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:gpu-autostop-idle"
  }
}
