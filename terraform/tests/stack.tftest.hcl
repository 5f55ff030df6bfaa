# The root stack: the modules are wired together as docs/design.md says (the functions' environment,
# names n8n relies on, the agent's settings), the KMS key lets alarms and budgets use the encrypted
# topic, and no identity policy allows a mutating action on "*".
# `command = apply` with the mock provider: nothing real is created, computed values are mocked.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  functions_zip_path = "tests/fixtures/placeholder-artifact.txt"
  agent_archive_path = "tests/fixtures/placeholder-artifact.txt"
  allowed_cidrs      = ["203.0.113.7/32"]
  alert_emails       = ["owner@example.com"]
}

run "default_stack" {
  assert {
    condition     = var.reserved_concurrency == { start = -1, status = -1, stop = -1, cost_report = -1, budget = -1 }
    error_message = "The stack reserves no concurrency by default (a new account's limit is often 10, and Lambda keeps 100 unreserved): reserving is an opt-in."
  }

  assert {
    condition = module.control_plane.environment == {
      INSTANCE_ID                  = module.instance.instance_id
      INSTANCE_TYPE                = "g4dn.xlarge"
      AGENT_STATE_PARAMETER        = "/gpu-autostop/agent-state"
      LEASE_PARAMETER              = "/gpu-autostop/lease"
      ALERT_TOPIC_ARN              = module.alerts.topic_arn
      IDLE_MINUTES                 = "10"
      BOOT_GRACE_MINUTES           = "5"
      HEARTBEAT_SECONDS            = "60"
      COMFYUI_PORT                 = "8188"
      CPU_IDLE_PERCENT             = "5"
      NETWORK_IDLE_BYTES           = "1000000"
      INSTALL_TIMEOUT_MINUTES      = "45"
      SILENT_STOP_MINUTES          = "90"
      STOP_INTENT_PARAMETER        = "/gpu-autostop/stop-intent"
      SILENT_NOTE_PARAMETER        = "/gpu-autostop/silent-note"
      POWERTOOLS_SERVICE_NAME      = "gpu-autostop"
      POWERTOOLS_METRICS_NAMESPACE = "GpuAutostop"
      LEDGER_PARAMETER             = "/gpu-autostop/ledger"
      CAP_PARAMETER                = "/gpu-autostop/cap"
      BUDGETS_USD                  = "50,150"
    }
    error_message = "The functions' environment must match the contract (docs/operations.md#the-functions-environment), wired to this stack's instance, parameters and topic (no hard cap, fixed costs or cost tag by default)."
  }

  assert {
    condition     = output.function_names == { start = "gpu-autostop-start", status = "gpu-autostop-status", stop = "gpu-autostop-stop", cost_report = "gpu-autostop-cost-report", budget = "gpu-autostop-budget" }
    error_message = "The n8n workflows call gpu-autostop-start and gpu-autostop-status; the cost report and budget functions follow the same naming."
  }

  assert {
    condition     = output.cost_report_function == "gpu-autostop-cost-report" && output.ledger_parameter == "/gpu-autostop/ledger" && output.cap_parameter == "/gpu-autostop/cap" && output.cap_reset_command == "AWS_DEFAULT_REGION=us-east-1 make reset-cap CAP_PARAMETER=/gpu-autostop/cap"
    error_message = "The outputs must name the cost report function, the ledger and cap parameters, and the command that resets the cap."
  }

  assert {
    condition     = output.hard_cap_topic_arn == null && keys(output.budget_names) == ["normal", "peak"] && module.control_plane.cost_report_rule_arn != null
    error_message = "No hard-cap pieces without hard_cap_usd; the cost report's schedule is there."
  }

  assert {
    condition = (
      output.n8n.region == "us-east-1" &&
      output.n8n.start_function == "gpu-autostop-start" &&
      output.n8n.status_function == "gpu-autostop-status" &&
      output.n8n.start_function_arn == output.function_arns["start"] &&
      output.n8n.comfyui_url == "http://198.51.100.10:8188" &&
      output.n8n.comfyui_port == 8188 &&
      output.n8n.invoke_policy_arn == module.n8n_access.policy_arn &&
      output.n8n.user_name == null && output.n8n.role_arn == null && output.n8n.access_key_id == null
    )
    error_message = "The n8n output must carry what a workflow needs, and no credentials unless asked."
  }

  assert {
    condition = alltrue([for line in [
      "AGENT_STATE_PARAMETER='/gpu-autostop/agent-state'",
      "METRICS_NAMESPACE='GpuAutostop'",
      "IDLE_MINUTES='10'",
      "SELF_STOP_MINUTES='60'",
      "HEARTBEAT_SECONDS='60'",
      "METRICS_SECONDS='60'",
      "BOOT_GRACE_MINUTES='5'",
      "GPU_BUSY_PERCENT='5'",
      "AWS_REGION='us-east-1'",
      "COMFYUI_URL='http://127.0.0.1:8188'",
      "COMFYUI_PORT='8188'",
      "INSTALL_TIMEOUT_MINUTES='45'",
      "TORCH_VERSION='2.8.0'",
      "TORCHVISION_VERSION='0.23.0'",
      "TORCHAUDIO_VERSION='2.8.0'",
    ] : strcontains(module.instance.settings_env, "${line}\n")])
    error_message = "The agent must get its settings (agent/install.sh's environment) through settings.env."
  }

  assert {
    condition     = module.idle_alarms.alarm_rule == "ALARM(\"gpu-autostop-idle-cpu\") AND ALARM(\"gpu-autostop-idle-gpu\") AND ALARM(\"gpu-autostop-idle-network\") AND ALARM(\"gpu-autostop-idle-queue\")"
    error_message = "The composite idle alarm must combine the four idle alarms."
  }

  assert {
    condition     = aws_kms_key.main.enable_key_rotation && aws_kms_alias.main.name == "alias/gpu-autostop"
    error_message = "The project key must rotate."
  }

  assert {
    condition = { for s in jsondecode(aws_kms_key.main.policy).Statement : s.Principal.Service => s.Action if can(s.Principal.Service) && contains(["cloudwatch.amazonaws.com", "budgets.amazonaws.com"], try(s.Principal.Service, "")) } == {
      "cloudwatch.amazonaws.com" = ["kms:Decrypt", "kms:GenerateDataKey*"]
      "budgets.amazonaws.com"    = ["kms:Decrypt", "kms:GenerateDataKey*"]
    }
    error_message = "CloudWatch alarms and AWS Budgets must be able to use the key, or they cannot publish to the encrypted topic."
  }

  assert {
    condition     = [for s in jsondecode(aws_kms_key.main.policy).Statement : s.Condition.ArnLike["kms:EncryptionContext:aws:logs:arn"] if s.Sid == "CloudWatchLogsEncryptProjectLogGroups"] == ["arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/gpu-autostop-*"]
    error_message = "CloudWatch Logs may use the key for this project's log groups only."
  }
}

run "every_option_on" {
  state_key = "every_option_on"

  variables {
    name                      = "comfy-gpu"
    metrics_namespace         = "ComfyGpu"
    fallback_instance_types   = ["g5.xlarge"]
    ebs_kms_key_arn           = "arn:aws:kms:us-east-1:123456789012:key/cccccccc-1111-4222-8333-444444444444"
    budgets_include_credits   = true
    hourly_price_usd          = 0.2
    models_s3_uri             = "s3://my-models/comfyui"
    create_eip                = true
    lambda_tracing            = true
    n8n_create_user           = true
    n8n_create_access_key     = true
    n8n_role_trusted_arns     = ["arn:aws:iam::123456789012:role/n8n-host"]
    n8n_attach_to_users       = ["existing-n8n"]
    hard_cap_usd              = 75.5
    fixed_monthly_usd         = 14
    budget_normal_usd         = 40
    budget_peak_usd           = 120
    project_tag               = "comfy"
    budget_filter_project_tag = true
    cost_report_schedule      = "cron(30 6 1 * ? *)"
  }

  assert {
    condition     = output.function_names == { start = "comfy-gpu-start", status = "comfy-gpu-status", stop = "comfy-gpu-stop", cost_report = "comfy-gpu-cost-report", budget = "comfy-gpu-budget" } && output.agent_state_parameter == "/comfy-gpu/agent-state" && output.lease_parameter == "/comfy-gpu/lease" && output.ledger_parameter == "/comfy-gpu/ledger" && output.cap_parameter == "/comfy-gpu/cap"
    error_message = "Function and parameter names must follow var.name."
  }

  assert {
    condition = (
      module.control_plane.environment["HARD_CAP_USD"] == "75.5" &&
      module.control_plane.environment["FIXED_MONTHLY_USD"] == "14" &&
      module.control_plane.environment["BUDGETS_USD"] == "40,120" &&
      module.control_plane.environment["COST_TAG_KEY"] == "Project" &&
      module.control_plane.environment["COST_TAG_VALUE"] == "comfy" &&
      module.control_plane.environment["LEDGER_PARAMETER"] == "/comfy-gpu/ledger" &&
      module.control_plane.environment["CAP_PARAMETER"] == "/comfy-gpu/cap"
    )
    error_message = "The hard cap, fixed costs, budgets and the Project tag (when the budgets filter on it) must reach the functions' environment."
  }

  # The hard cap's chain: budget -> its own topic -> the budget function.
  assert {
    condition = module.cost_guard.hard_cap == {
      budget_name             = "comfy-gpu-hard-cap"
      limit_usd               = "75.50"
      topic_arn               = output.hard_cap_topic_arn
      subscribed_function_arn = output.function_arns["budget"]
      invoke_permission = {
        function_name = "comfy-gpu-budget"
        principal     = "sns.amazonaws.com"
        source_arn    = output.hard_cap_topic_arn
      }
    } && output.hard_cap_topic_arn != null
    error_message = "The hard cap's budget must publish to its topic, which invokes the budget function."
  }

  assert {
    condition     = module.control_plane.cost_report_schedule == "cron(30 6 1 * ? *)"
    error_message = "The cost report's schedule must follow cost_report_schedule."
  }

  assert {
    condition     = module.control_plane.environment["FALLBACK_INSTANCE_TYPES"] == "g5.xlarge" && module.control_plane.environment["HOURLY_PRICE_USD"] == "0.2" && module.control_plane.environment["POWERTOOLS_METRICS_NAMESPACE"] == "ComfyGpu" && module.control_plane.environment["POWERTOOLS_SERVICE_NAME"] == "comfy-gpu"
    error_message = "Optional settings must reach the functions' environment."
  }

  assert {
    condition     = output.n8n.user_name == "comfy-gpu-n8n" && output.n8n.role_arn != null && output.n8n.access_key_id != null && output.n8n.comfyui_url == "http://198.51.100.20:8188"
    error_message = "The n8n output must name the user, role and key when they are asked for, and use the Elastic IP."
  }

  # No identity policy of the stack allows a mutating action (anything but Describe*/Get*/List*)
  # on "*", except where AWS offers no resource-level permissions and a condition scopes it.
  # Checked with every option on (the cost report and the budget function included): its
  # statements are a superset of the defaults'.
  assert {
    condition     = keys(module.control_plane.iam_policies) == ["budget", "cost_report", "start", "status", "stop"]
    error_message = "The scope checks below must cover every function's role."
  }

  assert {
    condition = alltrue(flatten([
      for name, doc in merge(module.control_plane.iam_policies, module.instance.iam_policies, module.n8n_access.iam_policies) : [
        for s in jsondecode(doc).Statement : !(
          s.Effect == "Allow" &&
          contains(flatten([s.Resource]), "*") &&
          lookup(s, "Condition", null) == null &&
          anytrue([for a in flatten([s.Action]) : !can(regex("^[a-z0-9-]+:(Describe|Get|List)[A-Za-z]*$", a))])
        )
      ]
    ]))
    error_message = "An IAM statement allows a mutating action on \"*\" without a condition."
  }

  assert {
    condition = flatten([
      for doc in values(merge(module.control_plane.iam_policies, module.instance.iam_policies, module.n8n_access.iam_policies)) : [
        for s in jsondecode(doc).Statement : { sid = s.Sid, action = s.Action, condition = lookup(s, "Condition", null) }
        if contains(flatten([s.Resource]), "*") && anytrue([for a in flatten([s.Action]) : !can(regex("^[a-z0-9-]+:(Describe|Get|List)[A-Za-z]*$", a))])
      ]
      ]) == [{
      sid       = "PublishAgentMetricsToOwnNamespaceOnly"
      action    = "cloudwatch:PutMetricData"
      condition = { StringEquals = { "cloudwatch:namespace" = "ComfyGpu" } }
    }]
    error_message = "The only mutating action on \"*\" is the agent's PutMetricData, limited to the project's namespace."
  }

  assert {
    condition     = !anytrue(flatten([for doc in values(merge(module.control_plane.iam_policies, module.instance.iam_policies, module.n8n_access.iam_policies)) : [for s in jsondecode(doc).Statement : [for a in flatten([s.Action]) : a == "*" || endswith(a, ":*")]]]))
    error_message = "No statement may use a wildcard action."
  }

  assert {
    condition     = strcontains(module.instance.iam_policies.instance, "\"arn:aws:s3:::my-models/comfyui/*\"")
    error_message = "The models prefix must scope the instance's read access."
  }
}
