# modules/control_plane: the functions match the contract of docs/design.md (handlers, timeouts) and
# the environment of docs/operations.md#the-functions-environment, each role holds only its own permissions, failures reach
# the encrypted dead-letter queue, the schedule re-checks idleness and the cron sends the weekly cost
# report. Mock provider, nothing real is created.

mock_provider "aws" {
  source = "./tests/mocks"
}

# Distinct ARNs for the parameters and functions (the shared mocks give every instance the same one),
# so the assertions can tell which parameter a statement or which function a trigger names.
override_resource {
  target = aws_ssm_parameter.shared["agent_state"]
  values = { arn = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/agent-state" }
}

override_resource {
  target = aws_ssm_parameter.shared["lease"]
  values = { arn = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/lease" }
}

override_resource {
  target = aws_ssm_parameter.shared["ledger"]
  values = { arn = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/ledger" }
}

override_resource {
  target = aws_ssm_parameter.shared["cap"]
  values = { arn = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/cap" }
}

override_resource {
  target = aws_ssm_parameter.shared["stop_intent"]
  values = { arn = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/stop-intent" }
}

override_resource {
  target = aws_ssm_parameter.shared["silent_note"]
  values = { arn = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/silent-note" }
}

override_resource {
  target = aws_lambda_function.this["stop"]
  values = { arn = "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-stop" }
}

override_resource {
  target = aws_lambda_function.this["cost_report"]
  values = { arn = "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-cost-report" }
}

variables {
  name       = "gpu-autostop"
  region     = "us-east-1"
  account_id = "123456789012"
  function_names = {
    start       = "gpu-autostop-start"
    status      = "gpu-autostop-status"
    stop        = "gpu-autostop-stop"
    cost_report = "gpu-autostop-cost-report"
    budget      = "gpu-autostop-budget"
  }
  functions_zip_path    = "tests/fixtures/placeholder-artifact.txt"
  instance_id           = "i-0123456789abcdef0"
  instance_arn          = "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"
  instance_type         = "g4dn.xlarge"
  agent_state_parameter = "/gpu-autostop/agent-state"
  lease_parameter       = "/gpu-autostop/lease"
  ledger_parameter      = "/gpu-autostop/ledger"
  cap_parameter         = "/gpu-autostop/cap"
  stop_intent_parameter = "/gpu-autostop/stop-intent"
  silent_note_parameter = "/gpu-autostop/silent-note"
  alert_topic_arn       = "arn:aws:sns:us-east-1:123456789012:gpu-autostop-alerts"
  kms_key_arn           = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  metrics_namespace     = "GpuAutostop"
  service_name          = "gpu-autostop"
  settings = {
    idle_minutes       = 10
    boot_grace_minutes = 5
    heartbeat_seconds  = 60
    comfyui_port       = 8188
    hourly_price_usd   = null
    cpu_idle_percent   = 5
    network_idle_bytes = 1000000
  }
}

run "functions_follow_the_contract" {
  module {
    source = "./modules/control_plane"
  }

  assert {
    condition = alltrue([for k, f in aws_lambda_function.this : f.environment[0].variables == tomap({
      INSTANCE_ID                  = "i-0123456789abcdef0"
      INSTANCE_TYPE                = "g4dn.xlarge"
      AGENT_STATE_PARAMETER        = "/gpu-autostop/agent-state"
      LEASE_PARAMETER              = "/gpu-autostop/lease"
      ALERT_TOPIC_ARN              = "arn:aws:sns:us-east-1:123456789012:gpu-autostop-alerts"
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
    })])
    error_message = "Every function's environment must be exactly the contract's (no FALLBACK_INSTANCE_TYPES, HOURLY_PRICE_USD, HARD_CAP_USD, FIXED_MONTHLY_USD or COST_TAG_* unless set)."
  }

  assert {
    condition = {
      for k, f in aws_lambda_function.this : k => [f.function_name, f.handler, f.timeout]
      } == {
      start       = ["gpu-autostop-start", "autostop.handlers.start.handler", 780]
      status      = ["gpu-autostop-status", "autostop.handlers.status.handler", 30]
      stop        = ["gpu-autostop-stop", "autostop.handlers.stop.handler", 60]
      cost_report = ["gpu-autostop-cost-report", "autostop.handlers.cost_report.handler", 60]
      budget      = ["gpu-autostop-budget", "autostop.handlers.budget.handler", 60]
    }
    error_message = "Names, handlers and timeouts must match the contract (start waits up to 600 s + 120 s stopping)."
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.runtime == "python3.12" && f.architectures == tolist(["x86_64"]) && f.memory_size == 256 && f.tracing_config[0].mode == "PassThrough"])
    error_message = "python3.12 on x86_64 (the package is built for it), 256 MB, no active tracing by default."
  }

  assert {
    condition     = { for k, f in aws_lambda_function.this : k => f.reserved_concurrent_executions } == { start = -1, status = -1, stop = -1, cost_report = -1, budget = -1 }
    error_message = "By default no function reserves concurrency: a new account (limit 10) can reserve none, and a reservation would fail the deploy half way."
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.source_code_hash == filebase64sha256("tests/fixtures/placeholder-artifact.txt")])
    error_message = "The package hash must come from the zip, so an unchanged zip gives no diff."
  }

  assert {
    condition     = alltrue([for k, g in aws_cloudwatch_log_group.function : g.name == "/aws/lambda/${var.function_names[k]}" && g.retention_in_days == 30 && g.kms_key_id == var.kms_key_arn])
    error_message = "Each function's log group must have a retention and the project key."
  }

  assert {
    condition     = alltrue([for c in aws_lambda_function_event_invoke_config.this : c.destination_config[0].on_failure[0].destination == aws_sqs_queue.dlq.arn && c.maximum_retry_attempts == 2])
    error_message = "Failed asynchronous invocations must land in the dead-letter queue after 2 retries."
  }

  assert {
    condition     = aws_sqs_queue.dlq.kms_master_key_id == var.kms_key_arn
    error_message = "The dead-letter queue must be encrypted with the project key."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.dlq_depth.alarm_actions == toset([var.alert_topic_arn]) && aws_cloudwatch_metric_alarm.dlq_depth.dimensions.QueueName == aws_sqs_queue.dlq.name
    error_message = "The dead-letter queue depth must alarm to the topic."
  }

  assert {
    condition     = keys(aws_cloudwatch_metric_alarm.errors) == keys(aws_lambda_function.this) && alltrue([for k, a in aws_cloudwatch_metric_alarm.errors : a.metric_name == "Errors" && a.dimensions.FunctionName == var.function_names[k] && a.alarm_actions == toset([var.alert_topic_arn]) && strcontains(a.alarm_description, "What to do")])
    error_message = "Each function's Errors metric must alarm to the topic, saying what to do."
  }

  assert {
    condition     = strcontains(aws_cloudwatch_metric_alarm.errors["cost_report"].alarm_description, "--function-name gpu-autostop-cost-report ")
    error_message = "The cost report's error email must say how to run it again."
  }

  assert {
    condition     = keys(aws_lambda_function_event_invoke_config.this) == keys(aws_lambda_function.this) && keys(aws_cloudwatch_log_group.function) == keys(aws_lambda_function.this) && keys(aws_iam_role.function) == keys(aws_lambda_function.this)
    error_message = "Every function, the cost report and budget functions included, must have its own role, log group and dead-letter configuration."
  }

  assert {
    condition     = aws_cloudwatch_event_rule.cost_report[0].schedule_expression == "cron(0 7 ? * MON *)" && aws_cloudwatch_event_target.cost_report[0].arn == "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-cost-report" && aws_cloudwatch_event_target.cost_report[0].rule == aws_cloudwatch_event_rule.cost_report[0].name
    error_message = "The weekly cron (Mondays 07:00 UTC by default) must target the cost report function."
  }

  assert {
    condition     = aws_lambda_permission.cost_report[0].principal == "events.amazonaws.com" && aws_lambda_permission.cost_report[0].source_arn == aws_cloudwatch_event_rule.cost_report[0].arn && aws_lambda_permission.cost_report[0].function_name == "gpu-autostop-cost-report" && aws_lambda_permission.cost_report[0].source_account == "123456789012"
    error_message = "Only the cost report rule may invoke the cost report function through EventBridge."
  }

  assert {
    condition     = aws_cloudwatch_event_target.recheck.arn == "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-stop"
    error_message = "The re-check schedule must still target the stop function."
  }

  assert {
    condition     = aws_cloudwatch_event_rule.recheck.schedule_expression == "rate(5 minutes)" && aws_cloudwatch_event_target.recheck.arn == aws_lambda_function.this["stop"].arn
    error_message = "The schedule must send the stop function a re-check every recheck_minutes."
  }

  assert {
    condition     = aws_lambda_permission.recheck.principal == "events.amazonaws.com" && aws_lambda_permission.recheck.source_arn == aws_cloudwatch_event_rule.recheck.arn && aws_lambda_permission.recheck.function_name == "gpu-autostop-stop"
    error_message = "Only the schedule rule may invoke the stop function through EventBridge."
  }

  assert {
    condition     = aws_ssm_parameter.shared["agent_state"].name == "/gpu-autostop/agent-state" && aws_ssm_parameter.shared["lease"].name == "/gpu-autostop/lease" && aws_ssm_parameter.shared["agent_state"].type == "String"
    error_message = "The shared parameters must have the contract's names."
  }

  assert {
    condition = { for k in ["ledger", "cap"] : k => [aws_ssm_parameter.shared[k].name, aws_ssm_parameter.shared[k].type, jsondecode(aws_ssm_parameter.shared[k].value)] } == {
      ledger = ["/gpu-autostop/ledger", "String", {}]
      cap    = ["/gpu-autostop/cap", "String", { tripped = false }]
    }
    error_message = "The usage ledger starts as {} and the hard cap's flag as {\"tripped\": false}, plain Strings (the functions write them)."
  }
}

run "each_role_holds_only_its_own_permissions" {
  module {
    source = "./modules/control_plane"
  }

  # The mutating actions each function may take, with their resources.
  assert {
    condition = {
      for k, p in aws_iam_role_policy.function : k => {
        for s in jsondecode(p.policy).Statement : s.Sid => s.Resource
        if length([for a in flatten([s.Action]) : a if !can(regex("^[a-z0-9-]+:(Describe|Get|List)", a))]) > 0
      }
      } == {
      start = {
        WriteOwnLogs                                = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/gpu-autostop-start:*"
        SendFailedAsyncInvocationsToDeadLetterQueue = aws_sqs_queue.dlq.arn
        UseProjectKeyForQueueAndTopic               = var.kms_key_arn
        StartAndResizeTheInstance                   = var.instance_arn
        RecordLease                                 = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/lease"
        KeepUsageLedger                             = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/ledger"
        TripHardCap                                 = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/cap"
        NotifyHardCap                               = var.alert_topic_arn
      }
      status = {
        WriteOwnLogs                                = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/gpu-autostop-status:*"
        SendFailedAsyncInvocationsToDeadLetterQueue = aws_sqs_queue.dlq.arn
        UseProjectKeyForQueueAndTopic               = var.kms_key_arn
      }
      stop = {
        WriteOwnLogs                                = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/gpu-autostop-stop:*"
        SendFailedAsyncInvocationsToDeadLetterQueue = aws_sqs_queue.dlq.arn
        UseProjectKeyForQueueAndTopic               = var.kms_key_arn
        StopTheInstance                             = var.instance_arn
        RecordStopIntent                            = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/stop-intent"
        KeepSilentAgentNote                         = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/silent-note"
        NotifyStops                                 = var.alert_topic_arn
        KeepUsageLedger                             = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/ledger"
        TripHardCap                                 = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/cap"
      }
      cost_report = {
        WriteOwnLogs                                = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/gpu-autostop-cost-report:*"
        SendFailedAsyncInvocationsToDeadLetterQueue = aws_sqs_queue.dlq.arn
        UseProjectKeyForQueueAndTopic               = var.kms_key_arn
        SendReport                                  = var.alert_topic_arn
      }
      budget = {
        WriteOwnLogs                                = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/gpu-autostop-budget:*"
        SendFailedAsyncInvocationsToDeadLetterQueue = aws_sqs_queue.dlq.arn
        UseProjectKeyForQueueAndTopic               = var.kms_key_arn
        ReadAndTripHardCap                          = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/cap"
        StopTheInstance                             = var.instance_arn
        NotifyHardCap                               = var.alert_topic_arn
      }
    }
    error_message = "Each function may change only its own resources: start starts/resizes the instance, writes the lease and the ledger and may trip the cap; stop stops it, notifies, keeps the ledger and may trip the cap; the budget function sets the cap flag, stops the instance and emails; the cost report only emails; status changes nothing but its logs."
  }

  # The read-only SSM statements name exactly the parameters the code reads.
  assert {
    condition = {
      for k, p in aws_iam_role_policy.function : k => {
        for s in jsondecode(p.policy).Statement : s.Sid => flatten([s.Resource]) if startswith(flatten([s.Action])[0], "ssm:Get") && length(flatten([s.Action])) == 1
      }
      } == {
      start = {
        ReadAgentState       = ["arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/agent-state"]
        ReadStopIntent       = ["arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/stop-intent"]
        ReadHardCapAndLedger = ["arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/cap", "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/ledger"]
      }
      status = {
        ReadAgentStateAndLease = ["arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/agent-state", "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/lease"]
      }
      stop = {
        ReadAgentStateAndLease = ["arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/agent-state", "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/lease"]
        ReadHardCapAndLedger   = ["arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/cap", "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/ledger"]
      }
      cost_report = {
        ReadAgentStateAndLedger = ["arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/agent-state", "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/ledger"]
        ReadHardCap             = ["arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/cap"]
      }
      budget = {}
    }
    error_message = "Each function may read only the parameters its code reads (GetParameter for single records, GetParameters where autostop.cap reads the flag and the ledger in one call)."
  }

  assert {
    condition = {
      for k, p in aws_iam_role_policy.function : k => sort(flatten([for s in jsondecode(p.policy).Statement : s.Action]))
      } == {
      start       = sort(["logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt", "ec2:DescribeInstances", "ec2:StartInstances", "ec2:ModifyInstanceAttribute", "ssm:GetParameter", "ssm:GetParameter", "ssm:PutParameter", "ssm:GetParameter", "ssm:GetParameter", "ssm:PutParameter", "ssm:GetParameters", "ssm:PutParameter", "sns:Publish"])
      status      = sort(["logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt", "ec2:DescribeInstances", "ssm:GetParameter"])
      stop        = sort(["logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt", "ec2:DescribeInstances", "ec2:StopInstances", "ssm:GetParameter", "cloudwatch:GetMetricStatistics", "ssm:PutParameter", "ssm:GetParameter", "ssm:PutParameter", "sns:Publish", "ssm:GetParameter", "ssm:PutParameter", "ssm:GetParameters", "ssm:PutParameter"])
      cost_report = sort(["logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt", "ec2:DescribeInstances", "ce:GetCostAndUsage", "ssm:GetParameter", "ssm:GetParameters", "sns:Publish"])
      budget      = sort(["logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt", "ec2:DescribeInstances", "ssm:GetParameters", "ssm:PutParameter", "ec2:StopInstances", "sns:Publish"])
    }
    error_message = "The functions' actions must be exactly what their code calls."
  }

  assert {
    condition     = alltrue([for r in aws_iam_role.function : jsondecode(r.assume_role_policy).Statement[0].Principal.Service == "lambda.amazonaws.com"])
    error_message = "Only Lambda may assume the function roles."
  }

  assert {
    condition     = length(aws_iam_role_policy_attachment.xray) == 0
    error_message = "No X-Ray permissions without tracing."
  }
}

# With a hard cap: its settings in every function's environment, and the budget function's role.
run "hard_cap_and_cost_settings" {
  state_key = "hard_cap"

  module {
    source = "./modules/control_plane"
  }

  variables {
    hard_cap_usd         = 80
    fixed_monthly_usd    = 12.5
    budgets_usd          = [20, 60.5]
    cost_tag             = { key = "Project", value = "comfy" }
    reserved_concurrency = { start = 2, status = 4, stop = 2, budget = 1 }
  }

  assert {
    condition = alltrue([for f in aws_lambda_function.this : (
      f.environment[0].variables.HARD_CAP_USD == "80" &&
      f.environment[0].variables.FIXED_MONTHLY_USD == "12.5" &&
      f.environment[0].variables.BUDGETS_USD == "20,60.5" &&
      f.environment[0].variables.COST_TAG_KEY == "Project" &&
      f.environment[0].variables.COST_TAG_VALUE == "comfy" &&
      f.environment[0].variables.CAP_PARAMETER == "/gpu-autostop/cap" &&
      f.environment[0].variables.LEDGER_PARAMETER == "/gpu-autostop/ledger" &&
      f.environment[0].variables.ALERT_TOPIC_ARN == var.alert_topic_arn
    )]) && length(aws_lambda_function.this) == 5
    error_message = "The cap, fixed costs, budgets and cost tag must reach every function, the budget function included."
  }

  assert {
    condition     = [aws_lambda_function.this["budget"].function_name, aws_lambda_function.this["budget"].handler, aws_lambda_function.this["budget"].timeout, aws_lambda_function.this["budget"].reserved_concurrent_executions] == ["gpu-autostop-budget", "autostop.handlers.budget.handler", 60, 1]
    error_message = "The budget function runs autostop.handlers.budget.handler."
  }

  assert {
    condition     = { for k, f in aws_lambda_function.this : k => f.reserved_concurrent_executions } == { start = 2, status = 4, stop = 2, cost_report = -1, budget = 1 }
    error_message = "Reserved concurrency, once opted into, must follow the variable (functions left out unreserved)."
  }

  assert {
    condition = {
      for s in jsondecode(aws_iam_role_policy.function["budget"].policy).Statement : s.Sid => "${join(" ", sort(flatten([s.Action])))} on ${s.Resource}"
      } == {
      WriteOwnLogs                                = "logs:CreateLogStream logs:PutLogEvents on arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/gpu-autostop-budget:*"
      SendFailedAsyncInvocationsToDeadLetterQueue = "sqs:SendMessage on ${aws_sqs_queue.dlq.arn}"
      UseProjectKeyForQueueAndTopic               = "kms:Decrypt kms:GenerateDataKey on ${var.kms_key_arn}"
      DescribeInstances                           = "ec2:DescribeInstances on *"
      ReadAndTripHardCap                          = "ssm:GetParameters ssm:PutParameter on arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/cap"
      StopTheInstance                             = "ec2:StopInstances on ${var.instance_arn}"
      NotifyHardCap                               = "sns:Publish on ${var.alert_topic_arn}"
    }
    error_message = "The budget function may read and set the cap flag, stop the instance and email: nothing else."
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.errors["budget"].alarm_actions == toset([var.alert_topic_arn]) && strcontains(aws_cloudwatch_metric_alarm.errors["budget"].alarm_description, "make stop") && aws_lambda_function_event_invoke_config.this["budget"].destination_config[0].on_failure[0].destination == aws_sqs_queue.dlq.arn
    error_message = "The budget function's failures must alarm (saying to stop the instance) and land in the dead-letter queue."
  }
}

# Without the weekly schedule the cost report function stays (to be invoked by hand).
run "no_cost_report_schedule" {
  state_key = "no_cost_report"

  module {
    source = "./modules/control_plane"
  }

  variables {
    cost_report_enabled = false
  }

  assert {
    condition     = length(aws_cloudwatch_event_rule.cost_report) == 0 && length(aws_cloudwatch_event_target.cost_report) == 0 && length(aws_lambda_permission.cost_report) == 0 && output.cost_report_rule_arn == null && output.cost_report_schedule == null
    error_message = "cost_report_enabled = false must leave no schedule and no EventBridge permission."
  }

  assert {
    condition     = keys(aws_lambda_function.this) == ["budget", "cost_report", "start", "status", "stop"]
    error_message = "The functions themselves do not depend on the schedule."
  }
}

run "optional_settings_when_asked" {
  state_key = "optional"

  module {
    source = "./modules/control_plane"
  }

  variables {
    fallback_instance_types = ["g5.xlarge", "g6.xlarge"]
    settings = {
      idle_minutes       = 7.5
      boot_grace_minutes = 0
      heartbeat_seconds  = 30
      comfyui_port       = 8190
      hourly_price_usd   = 0.25
      cpu_idle_percent   = 3
      network_idle_bytes = 2500000
    }
    tracing              = true
    encrypt_logs         = false
    log_retention_days   = 7
    recheck_minutes      = 1
    memory_mb            = 512
    reserved_concurrency = { start = -1, status = -1, stop = 1 }
    cost_report_schedule = "rate(7 days)"
  }

  assert {
    condition = alltrue([for f in aws_lambda_function.this : (
      f.environment[0].variables.FALLBACK_INSTANCE_TYPES == "g5.xlarge,g6.xlarge" &&
      f.environment[0].variables.HOURLY_PRICE_USD == "0.25" &&
      f.environment[0].variables.IDLE_MINUTES == "7.5" &&
      f.environment[0].variables.BOOT_GRACE_MINUTES == "0" &&
      f.environment[0].variables.HEARTBEAT_SECONDS == "30" &&
      f.environment[0].variables.COMFYUI_PORT == "8190" &&
      f.environment[0].variables.CPU_IDLE_PERCENT == "3" &&
      f.environment[0].variables.NETWORK_IDLE_BYTES == "2500000"
    )])
    error_message = "Fallback types (comma list), price and thresholds must reach every function."
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.tracing_config[0].mode == "Active" && f.memory_size == 512]) && length(aws_iam_role_policy_attachment.xray) == 5
    error_message = "Tracing must turn on active tracing with X-Ray write access."
  }

  assert {
    condition     = alltrue([for g in aws_cloudwatch_log_group.function : g.kms_key_id == null && g.retention_in_days == 7])
    error_message = "encrypt_logs = false must leave the log groups on the service key; retention follows the variable."
  }

  assert {
    condition     = aws_cloudwatch_event_rule.recheck.schedule_expression == "rate(1 minute)"
    error_message = "A 1-minute re-check needs the singular unit."
  }

  assert {
    condition     = aws_cloudwatch_event_rule.cost_report[0].schedule_expression == "rate(7 days)"
    error_message = "The cost report schedule must follow the variable."
  }

  assert {
    condition     = { for k, f in aws_lambda_function.this : k => f.reserved_concurrent_executions } == { start = -1, status = -1, stop = 1, cost_report = -1, budget = -1 }
    error_message = "-1 must leave a function unreserved."
  }
}

# A customer-managed root volume key: the start role may use that key as EC2 needs to start the
# instance (CreateGrant only for AWS resources), and no other role gets it. Without one (the
# default, aws/ebs): no KMS statement beyond the project key.
run "start_role_uses_the_customer_root_volume_key_only" {
  command = plan

  module {
    source = "./modules/control_plane"
  }

  variables {
    ebs_kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/cccccccc-1111-4222-8333-444444444444"
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role_policy.function["start"].policy).Statement : [s.Action, s.Resource, try(s.Condition, null)]
      if s.Resource == var.ebs_kms_key_arn
      ] == [
      ["kms:CreateGrant", var.ebs_kms_key_arn, { Bool = { "kms:GrantIsForAWSResource" = "true" } }],
      [["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"], var.ebs_kms_key_arn, null],
    ]
    error_message = "The start role must hold exactly the EBS encryption permissions AWS documents, on the customer key, CreateGrant for AWS resources only."
  }

  assert {
    condition     = alltrue([for k in ["status", "stop", "cost_report", "budget"] : !strcontains(aws_iam_role_policy.function[k].policy, var.ebs_kms_key_arn)])
    error_message = "Only the start role may use the root volume key."
  }
}

run "no_root_volume_key_statements_by_default" {
  command = plan

  module {
    source = "./modules/control_plane"
  }

  assert {
    condition     = alltrue([for p in aws_iam_role_policy.function : !strcontains(p.policy, "kms:CreateGrant")])
    error_message = "With the AWS-managed aws/ebs key no role needs (or gets) kms:CreateGrant."
  }
}

run "stop_intent_is_written_by_stop_and_only_read_by_start" {
  module {
    source = "./modules/control_plane"
  }

  assert {
    condition = jsonencode({
      for k, p in aws_iam_role_policy.function : k => sort(flatten([
        for s in jsondecode(p.policy).Statement : flatten([s.Action])
        if contains(flatten([s.Resource]), "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/stop-intent")
      ]))
      }) == jsonencode({
      budget      = []
      cost_report = []
      start       = ["ssm:GetParameter"]
      status      = []
      stop        = ["ssm:PutParameter"]
    })
    error_message = "Only the stop function may write the stop intent; start may only read it (and start never gets StopInstances, stop never StartInstances)."
  }

  assert {
    condition = alltrue([
      for s in jsondecode(aws_iam_role_policy.function["stop"].policy).Statement :
      !contains(flatten([s.Action]), "ec2:StartInstances")
    ])
    error_message = "The stop role must not be able to start the instance."
  }
}

run "silent_stop_must_outlast_the_idle_time" {
  command = plan
  module {
    source = "./modules/control_plane"
  }

  variables {
    silent_stop_minutes = 15
  }

  expect_failures = [var.silent_stop_minutes]
}
