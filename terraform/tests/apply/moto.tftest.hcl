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
    # The hard cap's pieces (budget function, topic, subscription, permission) are created in moto
    # too; `make demo` applies the stack without a cap.
    hard_cap_usd = 80
  }

  assert {
    condition     = startswith(output.instance_id, "i-") && output.region == "us-east-1"
    error_message = "The instance must exist in the emulator."
  }

  assert {
    condition     = output.function_arns == { for k, n in { start = "start", status = "status", stop = "stop", cost_report = "cost-report", budget = "budget" } : k => "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-${n}" }
    error_message = "The five functions must be deployed under the names n8n (start, status) and the README (cost report, budget) use."
  }

  assert {
    condition     = startswith(output.hard_cap_topic_arn, "arn:aws:sns:us-east-1:123456789012:gpu-autostop-hard-cap") && output.cap_parameter == "/gpu-autostop/cap" && output.ledger_parameter == "/gpu-autostop/ledger"
    error_message = "The hard-cap topic and the cost parameters must exist."
  }

  # As moto returned them on read: the subscription, and the permission on the budget function.
  assert {
    condition = module.cost_guard.hard_cap == {
      budget_name             = "gpu-autostop-hard-cap"
      limit_usd               = "80.00"
      topic_arn               = output.hard_cap_topic_arn
      subscribed_function_arn = output.function_arns["budget"]
      invoke_permission = {
        function_name = "gpu-autostop-budget"
        principal     = "sns.amazonaws.com"
        source_arn    = output.hard_cap_topic_arn
      }
    }
    error_message = "The hard-cap topic must invoke the budget function (subscription and permission)."
  }

  assert {
    condition     = module.control_plane.cost_report_schedule == "cron(0 7 ? * MON *)" && module.control_plane.cost_report_rule_arn != null
    error_message = "The weekly cost report's schedule must exist."
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
    ledger_parameter      = run.apply.ledger_parameter
    cap_parameter         = run.apply.cap_parameter
    artifacts_bucket      = run.apply.artifacts_bucket
  }

  assert {
    condition     = alltrue([for k, f in output.functions : f.environment["INSTANCE_ID"] == run.apply.instance_id && f.environment["ALERT_TOPIC_ARN"] == run.apply.alert_topic_arn && f.environment["AGENT_STATE_PARAMETER"] == "/gpu-autostop/agent-state" && f.environment["LEASE_PARAMETER"] == "/gpu-autostop/lease" && f.environment["INSTANCE_TYPE"] == "g4dn.xlarge" && f.environment["FALLBACK_INSTANCE_TYPES"] == "g5.xlarge"])
    error_message = "Every deployed function must point at the deployed instance, parameters and topic."
  }

  # config.py's cost variables, on every function (the budget and cost report functions included).
  assert {
    condition     = alltrue([for k, f in output.functions : f.environment["LEDGER_PARAMETER"] == "/gpu-autostop/ledger" && f.environment["CAP_PARAMETER"] == "/gpu-autostop/cap" && f.environment["HARD_CAP_USD"] == "80" && f.environment["BUDGETS_USD"] == "50,150" && !contains(keys(f.environment), "FIXED_MONTHLY_USD") && !contains(keys(f.environment), "COST_TAG_KEY")]) && length(output.functions) == 5
    error_message = "Every deployed function must carry the ledger and cap parameters, the hard cap and the budgets (no fixed costs or cost tag unless set)."
  }

  assert {
    condition     = output.functions["cost_report"].environment["ALERT_TOPIC_ARN"] == run.apply.alert_topic_arn && output.functions["budget"].environment["ALERT_TOPIC_ARN"] == run.apply.alert_topic_arn && output.functions["budget"].environment["INSTANCE_ID"] == run.apply.instance_id
    error_message = "The cost report and the budget function must email through the alerts topic and act on the deployed instance."
  }

  assert {
    condition     = { for k, f in output.functions : k => [f.handler, f.runtime, f.timeout] } == { start = ["autostop.handlers.start.handler", "python3.12", 780], status = ["autostop.handlers.status.handler", "python3.12", 30], stop = ["autostop.handlers.stop.handler", "python3.12", 60], cost_report = ["autostop.handlers.cost_report.handler", "python3.12", 60], budget = ["autostop.handlers.budget.handler", "python3.12", 60] }
    error_message = "Handlers, runtime and timeouts must be deployed as declared."
  }

  assert {
    condition     = length(distinct([for f in output.functions : f.role])) == 5
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
    condition     = output.parameters == { agent_state = "{\"v\":1}", lease = "{\"v\":1}", ledger = "{}", cap = "{\"tripped\":false}" }
    error_message = "The shared parameters must exist with their starting records (an empty ledger, an untripped cap)."
  }

  assert {
    condition     = strcontains(output.settings_env, "AGENT_STATE_PARAMETER='/gpu-autostop/agent-state'\n") && strcontains(output.settings_env, "COMFYUI_PORT='8188'\n")
    error_message = "settings.env must be in the artifacts bucket for the instance to read at boot."
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
