# `make demo`: apply the real stack to the moto server, hold it while the demo drives it, destroy.
# demo/run_demo.py (make demo) runs this with AWS_ENDPOINT_URL pointing at a moto server it started on
# 127.0.0.1; the overrides are the same as terraform/tests/apply/moto.tftest.hcl (a test keeps
# them identical), and the demo prints them.

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

run "deploy" {
  variables {
    ami_id             = "ami-1e749f67" # one of the AMIs moto ships
    agent_archive_path = "tests/fixtures/placeholder-artifact.txt"
    allowed_cidrs      = ["203.0.113.7/32"]
    alert_emails       = ["owner@example.com"]
    # Timings compressed so the demo finishes in under two minutes.
    idle_minutes       = 0.25
    boot_grace_minutes = 0.05
    heartbeat_seconds  = 5
  }
}

run "hold" {
  module {
    source = "../demo/terraform/hold"
  }

  variables {
    outputs = {
      region                = run.deploy.region
      instance_id           = run.deploy.instance_id
      function_names        = run.deploy.function_names
      agent_state_parameter = run.deploy.agent_state_parameter
      lease_parameter       = run.deploy.lease_parameter
      alert_topic_arn       = run.deploy.alert_topic_arn
      idle_alarm_name       = run.deploy.idle_alarm_name
    }
  }
}

# ---- Overrides: only what moto cannot create (docs/emulator.md says why) ----

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
