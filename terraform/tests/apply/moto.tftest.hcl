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
    ami_id                  = "ami-1e749f67" # one of the AMIs moto ships
    agent_archive_path      = "tests/fixtures/placeholder-artifact.txt"
    allowed_cidrs           = ["203.0.113.7/32"]
    alert_emails            = ["owner@example.com"]
    fallback_instance_types = ["g5.xlarge"]
  }

  assert {
    condition     = startswith(output.instance_id, "i-") && output.region == "us-east-1"
    error_message = "The instance must exist in the emulator."
  }

  assert {
    condition     = output.function_arns == { for k in ["start", "status", "stop"] : k => "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-${k}" }
    error_message = "The three functions must be deployed under the names n8n calls."
  }

  assert {
    condition     = output.n8n.start_function_arn == output.function_arns["start"] && output.n8n.status_function_arn == output.function_arns["status"]
    error_message = "The n8n output must point at the deployed functions."
  }

  assert {
    condition     = startswith(output.alert_topic_arn, "arn:aws:sns:us-east-1:123456789012:gpu-autostop-alerts") && output.kms_key_arn == aws_kms_key.main.arn
    error_message = "The alerts topic and the project key must exist."
  }
}

# Read the stack back through the AWS API and check the wiring on the emulator's values.
run "verify" {
  module {
    source = "./tests/apply/verify"
  }

  variables {
    instance_id           = run.apply.instance_id
    function_names        = run.apply.function_names
    agent_state_parameter = run.apply.agent_state_parameter
    lease_parameter       = run.apply.lease_parameter
    artifacts_bucket      = run.apply.artifacts_bucket
  }

  assert {
    condition     = alltrue([for k, f in output.functions : f.environment["INSTANCE_ID"] == run.apply.instance_id && f.environment["ALERT_TOPIC_ARN"] == run.apply.alert_topic_arn && f.environment["AGENT_STATE_PARAMETER"] == "/gpu-autostop/agent-state" && f.environment["LEASE_PARAMETER"] == "/gpu-autostop/lease" && f.environment["INSTANCE_TYPE"] == "g4dn.xlarge" && f.environment["FALLBACK_INSTANCE_TYPES"] == "g5.xlarge"])
    error_message = "Every deployed function must point at the deployed instance, parameters and topic."
  }

  assert {
    condition     = { for k, f in output.functions : k => [f.handler, f.runtime, f.timeout] } == { start = ["autostop.handlers.start.handler", "python3.12", 780], status = ["autostop.handlers.status.handler", "python3.12", 30], stop = ["autostop.handlers.stop.handler", "python3.12", 60] }
    error_message = "Handlers, runtime and timeouts must be deployed as declared."
  }

  assert {
    condition     = length(distinct([for f in output.functions : f.role])) == 3
    error_message = "Each function must run with a role of its own."
  }

  assert {
    condition     = output.instance.http_tokens == "required" && output.instance.ebs_optimized && output.instance.root_volumes == [{ encrypted = true, type = "gp3", size = 100 }]
    error_message = "The deployed instance must require IMDSv2 and have an encrypted 100 GiB gp3 root volume."
  }

  assert {
    condition     = output.instance.tags["Project"] == "gpu-autostop" && output.instance.tags["Name"] == "gpu-autostop" && startswith(output.instance.profile, "gpu-autostop-instance-")
    error_message = "The instance must carry the project tag and its instance profile."
  }

  assert {
    condition     = output.parameters == { agent_state = "{\"v\":1}", lease = "{\"v\":1}" }
    error_message = "The shared parameters must exist with their placeholder records."
  }

  assert {
    condition     = strcontains(output.settings_env, "AGENT_STATE_PARAMETER='/gpu-autostop/agent-state'\n") && strcontains(output.settings_env, "COMFYUI_PORT='8188'\n")
    error_message = "settings.env must be in the artifacts bucket for the instance to read at boot."
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
