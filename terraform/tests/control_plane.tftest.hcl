# modules/control_plane: the functions match DESIGN.md's Lambda contract (handlers, environment,
# timeouts), each role holds only its own permissions, failures reach the encrypted dead-letter
# queue, and the schedule re-checks idleness. Mock provider, nothing real is created.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name       = "gpu-autostop"
  region     = "us-east-1"
  account_id = "123456789012"
  function_names = {
    start  = "gpu-autostop-start"
    status = "gpu-autostop-status"
    stop   = "gpu-autostop-stop"
  }
  functions_zip_path    = "tests/fixtures/placeholder-artifact.txt"
  instance_id           = "i-0123456789abcdef0"
  instance_arn          = "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"
  instance_type         = "g4dn.xlarge"
  agent_state_parameter = "/gpu-autostop/agent-state"
  lease_parameter       = "/gpu-autostop/lease"
  alert_topic_arn       = "arn:aws:sns:us-east-1:123456789012:gpu-autostop-alerts"
  kms_key_arn           = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  reserved_concurrency  = { start = 2, status = 4, stop = 2 }
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
      POWERTOOLS_SERVICE_NAME      = "gpu-autostop"
      POWERTOOLS_METRICS_NAMESPACE = "GpuAutostop"
    })])
    error_message = "Every function's environment must be exactly the contract's (no FALLBACK_INSTANCE_TYPES or HOURLY_PRICE_USD unless set)."
  }

  assert {
    condition = {
      for k, f in aws_lambda_function.this : k => [f.function_name, f.handler, f.timeout]
      } == {
      start  = ["gpu-autostop-start", "autostop.handlers.start.handler", 780]
      status = ["gpu-autostop-status", "autostop.handlers.status.handler", 30]
      stop   = ["gpu-autostop-stop", "autostop.handlers.stop.handler", 60]
    }
    error_message = "Names, handlers and timeouts must match the contract (start waits up to 600 s + 120 s stopping)."
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.runtime == "python3.12" && f.architectures == tolist(["x86_64"]) && f.memory_size == 256 && f.tracing_config[0].mode == "PassThrough"])
    error_message = "python3.12 on x86_64 (the package is built for it), 256 MB, no active tracing by default."
  }

  assert {
    condition     = { for k, f in aws_lambda_function.this : k => f.reserved_concurrent_executions } == { start = 2, status = 4, stop = 2 }
    error_message = "Reserved concurrency must follow the variable."
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.source_code_hash == filebase64sha256("tests/fixtures/placeholder-artifact.txt")])
    error_message = "The package hash must come from the zip, so an unchanged zip gives no diff."
  }

  assert {
    condition     = alltrue([for k, g in aws_cloudwatch_log_group.function : g.name == "/aws/lambda/gpu-autostop-${k}" && g.retention_in_days == 30 && g.kms_key_id == var.kms_key_arn])
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
    condition     = alltrue([for k, a in aws_cloudwatch_metric_alarm.errors : a.metric_name == "Errors" && a.dimensions.FunctionName == "gpu-autostop-${k}" && a.alarm_actions == toset([var.alert_topic_arn]) && strcontains(a.alarm_description, "What to do")])
    error_message = "Each function's Errors metric must alarm to the topic, saying what to do."
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
        RecordLease                                 = aws_ssm_parameter.shared["lease"].arn
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
        NotifyStops                                 = var.alert_topic_arn
      }
    }
    error_message = "Each function may change only its own resources: start starts/resizes the instance and writes the lease, stop stops it and notifies, status changes nothing but its logs."
  }

  assert {
    condition = {
      for k, p in aws_iam_role_policy.function : k => sort(flatten([for s in jsondecode(p.policy).Statement : s.Action]))
      } == {
      start  = sort(["logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt", "ec2:DescribeInstances", "ec2:StartInstances", "ec2:ModifyInstanceAttribute", "ssm:GetParameter", "ssm:GetParameter", "ssm:PutParameter"])
      status = sort(["logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt", "ec2:DescribeInstances", "ssm:GetParameter"])
      stop   = sort(["logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt", "ec2:DescribeInstances", "ec2:StopInstances", "ssm:GetParameter", "cloudwatch:GetMetricStatistics", "sns:Publish"])
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
    condition     = alltrue([for f in aws_lambda_function.this : f.tracing_config[0].mode == "Active" && f.memory_size == 512]) && length(aws_iam_role_policy_attachment.xray) == 3
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
    condition     = { for k, f in aws_lambda_function.this : k => f.reserved_concurrent_executions } == { start = -1, status = -1, stop = 1 }
    error_message = "-1 must leave a function unreserved."
  }
}
