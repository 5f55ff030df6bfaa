# The control plane: start, status and stop functions, the weekly cost report and the hard cap's
# budget function (one package, one role each), their logs, the encrypted dead-letter queue for
# failed asynchronous invocations, error alarms, the SSM parameters they share with the agent and
# with each other (agent state, lease, usage ledger, hard-cap flag), the schedule that re-checks
# idleness and the weekly schedule of the cost report.

locals {
  # The functions' configuration contract (docs/operations.md#the-functions-environment):
  # every function gets the same environment.
  environment = merge(
    {
      INSTANCE_ID                  = var.instance_id
      INSTANCE_TYPE                = var.instance_type
      AGENT_STATE_PARAMETER        = var.agent_state_parameter
      LEASE_PARAMETER              = var.lease_parameter
      ALERT_TOPIC_ARN              = var.alert_topic_arn
      IDLE_MINUTES                 = tostring(var.settings.idle_minutes)
      BOOT_GRACE_MINUTES           = tostring(var.settings.boot_grace_minutes)
      HEARTBEAT_SECONDS            = tostring(var.settings.heartbeat_seconds)
      COMFYUI_PORT                 = tostring(var.settings.comfyui_port)
      CPU_IDLE_PERCENT             = tostring(var.settings.cpu_idle_percent)
      NETWORK_IDLE_BYTES           = tostring(var.settings.network_idle_bytes)
      INSTALL_TIMEOUT_MINUTES      = tostring(var.install_timeout_minutes)
      SILENT_STOP_MINUTES          = tostring(var.silent_stop_minutes)
      STOP_INTENT_PARAMETER        = var.stop_intent_parameter
      SILENT_NOTE_PARAMETER        = var.silent_note_parameter
      POWERTOOLS_SERVICE_NAME      = var.service_name
      POWERTOOLS_METRICS_NAMESPACE = var.metrics_namespace
    },
    # These two are set only when they have a value; an empty one would say nothing more (the
    # functions read a missing FALLBACK_INSTANCE_TYPES as none and a missing HOURLY_PRICE_USD as
    # "use the price table"), and HOURLY_PRICE_USD has no empty form.
    { for k, v in { FALLBACK_INSTANCE_TYPES = join(",", var.fallback_instance_types) } : k => v if length(var.fallback_instance_types) > 0 },
    { for k, v in { HOURLY_PRICE_USD = tostring(var.settings.hourly_price_usd) } : k => v if var.settings.hourly_price_usd != null },
    # Cost (issue 7): the usage ledger and the hard-cap flag are always there (start and stop keep
    # the ledger; start refuses while the flag is tripped; the report reads both). HARD_CAP_USD and
    # FIXED_MONTHLY_USD only with a value (missing: no cap; the pricing table's fixed costs), the
    # Cost Explorer tag only when the budgets filter on it too (missing: the report uses EC2).
    {
      LEDGER_PARAMETER = var.ledger_parameter
      CAP_PARAMETER    = var.cap_parameter
      BUDGETS_USD      = join(",", [for b in var.budgets_usd : tostring(b)])
    },
    { for k, v in { HARD_CAP_USD = tostring(var.hard_cap_usd) } : k => v if var.hard_cap_usd != null },
    { for k, v in { FIXED_MONTHLY_USD = tostring(var.fixed_monthly_usd) } : k => v if var.fixed_monthly_usd != null },
    var.cost_tag == null ? {} : { COST_TAG_KEY = var.cost_tag.key, COST_TAG_VALUE = var.cost_tag.value },
  )

  # Every function, always: a literal map, so that checkov expands the for_each resources and
  # checks each function and policy (it cannot evaluate a conditional for_each). Without a hard
  # cap nothing invokes the budget function; without enable_cost_report nothing schedules the report.
  functions = {
    start = {
      handler = "autostop.handlers.start.handler"
      # Longest wait a caller may ask for (600 s) + waiting for a stopping instance (120 s) + margin.
      timeout     = 780
      description = "Start the GPU instance (idempotent; optional wait for running/ready)"
    }
    status = {
      handler     = "autostop.handlers.status.handler"
      timeout     = 30
      description = "Report the GPU instance's state and whether ComfyUI is ready"
    }
    stop = {
      handler     = "autostop.handlers.stop.handler"
      timeout     = 60
      description = "Stop the GPU instance when verified idle (alarm, schedule) or when forced"
    }
    cost_report = {
      handler = "autostop.handlers.cost_report.handler"
      # Two Cost Explorer requests, DescribeInstances, two SSM reads, one SNS publish.
      timeout     = 60
      description = "Weekly cost report: Cost Explorer and the project's own figures, by email"
    }
    budget = {
      handler     = "autostop.handlers.budget.handler"
      timeout     = 60
      description = "Hard cap: on the AWS Budgets notification, stop the instance and refuse starts"
    }
  }

  # What an Errors alarm email says to do, by function ({function}: the function's name).
  error_advice = {
    start       = "n8n could not start the GPU; check the EC2 console for the instance state."
    status      = "n8n cannot tell whether ComfyUI is ready; check the EC2 console."
    stop        = "While stops fail the instance may keep running and costing money: run `make stop` to stop it now."
    cost_report = "This week's cost report was not sent. Cost Explorer being unavailable is not an error (the report says so); this is something else, e.g. SSM or SNS access. Run it again by hand: aws lambda invoke --function-name {function} --cli-binary-format raw-in-base64-out --payload '{}' /dev/stdout"
    budget      = "An AWS Budgets notification for the hard cap may not have been acted on, so the instance may still be running over the cap: run `make stop`, then `make cap-status CAP_PARAMETER=${var.cap_parameter}` (and `make reset-cap CAP_PARAMETER=${var.cap_parameter}` once you have decided)."
  }

  log_group_arns = { for k in keys(local.functions) : k => "arn:${var.partition}:logs:${var.region}:${var.account_id}:log-group:/aws/lambda/${var.function_names[k]}" }
  # Built from its name, not read from the queue: the roles (and so the functions) need not wait
  # for the queue, whose creation the provider holds for about 30 s while its attributes settle.
  dlq_arn = "arn:${var.partition}:sqs:${var.region}:${var.account_id}:${var.name}-dlq"

  # ----- one identity policy per function -----
  common_statements = {
    for k in keys(local.functions) : k => [
      {
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "${local.log_group_arns[k]}:*"
      },
      {
        Sid      = "SendFailedAsyncInvocationsToDeadLetterQueue"
        Effect   = "Allow"
        Action   = "sqs:SendMessage"
        Resource = local.dlq_arn
      },
      {
        # The dead-letter queue and the alerts topic are encrypted with the project key.
        Sid      = "UseProjectKeyForQueueAndTopic"
        Effect   = "Allow"
        Action   = ["kms:GenerateDataKey", "kms:Decrypt"]
        Resource = var.kms_key_arn
      },
      {
        # DescribeInstances supports no resource-level permissions; it is read-only.
        Sid      = "DescribeInstances"
        Effect   = "Allow"
        Action   = "ec2:DescribeInstances"
        Resource = "*"
      },
    ]
  }

  # Starting an instance whose root volume a customer-managed key encrypts: EC2 uses the key on
  # the caller's behalf. "You must grant users permission to call the following actions in order
  # to use EBS encryption: kms:CreateGrant, kms:Decrypt, kms:DescribeKey,
  # kms:GenerateDataKeyWithoutPlainText, kms:ReEncrypt", with CreateGrant limited by
  # kms:GrantIsForAWSResource (Amazon EBS user guide, "Requirements for Amazon EBS encryption",
  # https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html). On that key
  # only; nothing for the AWS-managed aws/ebs key, whose key policy already allows it.
  root_volume_key_statements = [for st in [
    {
      Sid       = "GrantEc2UseOfRootVolumeKey"
      Effect    = "Allow"
      Action    = "kms:CreateGrant"
      Resource  = var.ebs_kms_key_arn
      Condition = { Bool = { "kms:GrantIsForAWSResource" = "true" } }
    },
    {
      Sid      = "UseRootVolumeKeyToStart"
      Effect   = "Allow"
      Action   = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"]
      Resource = var.ebs_kms_key_arn
    },
  ] : st if var.ebs_kms_key_arn != null]

  specific_statements = {
    start = [
      {
        Sid      = "StartAndResizeTheInstance"
        Effect   = "Allow"
        Action   = ["ec2:StartInstances", "ec2:ModifyInstanceAttribute"]
        Resource = var.instance_arn
      },
      {
        Sid      = "ReadAgentState"
        Effect   = "Allow"
        Action   = "ssm:GetParameter"
        Resource = aws_ssm_parameter.shared["agent_state"].arn
      },
      {
        Sid      = "RecordLease"
        Effect   = "Allow"
        Action   = ["ssm:GetParameter", "ssm:PutParameter"]
        Resource = aws_ssm_parameter.shared["lease"].arn
      },
      {
        # A stop under way (control._outlast_stop_intent): read only; start never writes it.
        Sid      = "ReadStopIntent"
        Effect   = "Allow"
        Action   = "ssm:GetParameter"
        Resource = aws_ssm_parameter.shared["stop_intent"].arn
      },
      local.cost_statements.keep_ledger,
      local.cost_statements.read_cap_and_ledger,
      local.cost_statements.trip_cap,
      local.cost_statements.notify,
    ]
    status = [
      {
        Sid      = "ReadAgentStateAndLease"
        Effect   = "Allow"
        Action   = "ssm:GetParameter"
        Resource = [aws_ssm_parameter.shared["agent_state"].arn, aws_ssm_parameter.shared["lease"].arn]
      },
    ]
    stop = [
      {
        Sid      = "StopTheInstance"
        Effect   = "Allow"
        Action   = "ec2:StopInstances"
        Resource = var.instance_arn
      },
      {
        Sid      = "ReadAgentStateAndLease"
        Effect   = "Allow"
        Action   = "ssm:GetParameter"
        Resource = [aws_ssm_parameter.shared["agent_state"].arn, aws_ssm_parameter.shared["lease"].arn]
      },
      {
        # Fallback when the agent is silent; GetMetricStatistics is read-only and has no
        # resource-level permissions.
        Sid      = "ReadInstanceMetrics"
        Effect   = "Allow"
        Action   = "cloudwatch:GetMetricStatistics"
        Resource = "*"
      },
      {
        # "About to stop", written before the last lease read (start reads it); never StartInstances.
        Sid      = "RecordStopIntent"
        Effect   = "Allow"
        Action   = "ssm:PutParameter"
        Resource = aws_ssm_parameter.shared["stop_intent"].arn
      },
      {
        # One silent-agent email per boot.
        Sid      = "KeepSilentAgentNote"
        Effect   = "Allow"
        Action   = ["ssm:GetParameter", "ssm:PutParameter"]
        Resource = aws_ssm_parameter.shared["silent_note"].arn
      },
      {
        Sid      = "NotifyStops"
        Effect   = "Allow"
        Action   = "sns:Publish"
        Resource = var.alert_topic_arn
      },
      local.cost_statements.keep_ledger,
      local.cost_statements.read_cap_and_ledger,
      local.cost_statements.trip_cap,
    ]
    cost_report = [
      {
        # GetCostAndUsage is read-only and has no resource-level permissions.
        Sid      = "ReadCostExplorer"
        Effect   = "Allow"
        Action   = "ce:GetCostAndUsage"
        Resource = "*"
      },
      {
        Sid      = "ReadAgentStateAndLedger"
        Effect   = "Allow"
        Action   = "ssm:GetParameter"
        Resource = [aws_ssm_parameter.shared["agent_state"].arn, aws_ssm_parameter.shared["ledger"].arn]
      },
      {
        Sid      = "ReadHardCap"
        Effect   = "Allow"
        Action   = "ssm:GetParameters"
        Resource = aws_ssm_parameter.shared["cap"].arn
      },
      {
        Sid      = "SendReport"
        Effect   = "Allow"
        Action   = "sns:Publish"
        Resource = var.alert_topic_arn
      },
    ]
    budget = [
      {
        Sid      = "ReadAndTripHardCap"
        Effect   = "Allow"
        Action   = ["ssm:GetParameters", "ssm:PutParameter"]
        Resource = aws_ssm_parameter.shared["cap"].arn
      },
      {
        Sid      = "StopTheInstance"
        Effect   = "Allow"
        Action   = "ec2:StopInstances"
        Resource = var.instance_arn
      },
      local.cost_statements.notify,
    ]
  }

  # The usage ledger's and the hard cap's statements (autostop.ledger, autostop.cap), shared by start
  # and stop (and, for its email, the budget function).
  cost_statements = {
    # ledger.read/write: the running time, starts and images of each session.
    keep_ledger = {
      Sid      = "KeepUsageLedger"
      Effect   = "Allow"
      Action   = ["ssm:GetParameter", "ssm:PutParameter"]
      Resource = aws_ssm_parameter.shared["ledger"].arn
    }
    # cap.check reads the flag, and with HARD_CAP_USD the ledger, in one GetParameters call.
    read_cap_and_ledger = {
      Sid      = "ReadHardCapAndLedger"
      Effect   = "Allow"
      Action   = "ssm:GetParameters"
      Resource = [aws_ssm_parameter.shared["cap"].arn, aws_ssm_parameter.shared["ledger"].arn]
    }
    # cap.trip sets the flag when the month-to-date estimate passes HARD_CAP_USD.
    trip_cap = {
      Sid      = "TripHardCap"
      Effect   = "Allow"
      Action   = "ssm:PutParameter"
      Resource = aws_ssm_parameter.shared["cap"].arn
    }
    # cap.trip emails the alerts topic.
    notify = {
      Sid      = "NotifyHardCap"
      Effect   = "Allow"
      Action   = "sns:Publish"
      Resource = var.alert_topic_arn
    }
  }

  policies = {
    for k in keys(local.functions) : k => {
      Version   = "2012-10-17"
      Statement = concat(local.common_statements[k], local.specific_statements[k], [for st in local.root_volume_key_statements : st if k == "start"])
    }
  }

  schedule_expression = var.recheck_minutes == 1 ? "rate(1 minute)" : "rate(${var.recheck_minutes} minutes)"
}

# --------------------------------------------------------------------------------------------------
# SSM parameters shared with the agent and between the functions. Terraform creates them with a
# starting value and then leaves their values alone: the agent writes agent-state, the start function
# the lease, start and stop the usage ledger, the cap (and the owner's `make reset-cap`) the flag.
# --------------------------------------------------------------------------------------------------

resource "aws_ssm_parameter" "shared" {
  #checkov:skip=CKV2_AWS_34:Not secrets: readiness, activity and start-request timestamps, usage totals and the cap flag. The agent and the functions write them as plain Strings.
  # Inline (not a local) so that checkov expands it.
  for_each = {
    agent_state = { name = var.agent_state_parameter, value = jsonencode({ v = 1 }), description = "agent state record (JSON, written by the on-instance agent)" }
    lease       = { name = var.lease_parameter, value = jsonencode({ v = 1 }), description = "time of the last start request (JSON, written by the start function)" }
    ledger      = { name = var.ledger_parameter, value = jsonencode({}), description = "usage ledger: running time, starts, images, compute cost (JSON, written by the start and stop functions)" }
    cap         = { name = var.cap_parameter, value = jsonencode({ tripped = false }), description = "hard spend cap flag (JSON, set by the functions; reset with `make reset-cap`)" }
    stop_intent = { name = var.stop_intent_parameter, value = jsonencode({ v = 1 }), description = "the stop function's intent to stop (JSON, written by the stop function, read by start)" }
    silent_note = { name = var.silent_note_parameter, value = jsonencode({ v = 1 }), description = "the boot the stop function emailed about a silent agent (JSON, stop function only)" }
  }
  name        = each.value.name
  description = "${var.name}: ${each.value.description}"
  type        = "String"
  value       = each.value.value

  lifecycle {
    ignore_changes = [value]
  }
}

# --------------------------------------------------------------------------------------------------
# Dead-letter queue for asynchronous invocations that failed after retries
# --------------------------------------------------------------------------------------------------

resource "aws_sqs_queue" "dlq" {
  name                              = "${var.name}-dlq"
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  message_retention_seconds         = 1209600 # 14 days, the maximum
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  alarm_name          = "${var.name}-dead-letter-queue"
  alarm_description   = "An asynchronous invocation of a ${var.name} function (an alarm- or schedule-triggered stop, or an n8n start with invocation type Event) failed after its retries and landed in the dead-letter queue ${aws_sqs_queue.dlq.name}. What to do: read the message in the SQS console (it holds the event and the error), check the function's logs, fix the cause, then delete the message. If the instance may be running unattended, run `make stop`."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alert_topic_arn]
  ok_actions          = [var.alert_topic_arn]
}

# --------------------------------------------------------------------------------------------------
# Functions
# --------------------------------------------------------------------------------------------------

resource "aws_iam_role" "function" {
  for_each    = local.functions
  name        = "${var.function_names[each.key]}-lambda"
  description = "${var.function_names[each.key]}: ${each.value.description}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = var.account_id } }
    }]
  })
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions
  name     = "least-privilege"
  role     = aws_iam_role.function[each.key].id
  policy   = jsonencode(local.policies[each.key])
}

# X-Ray has no resource-level permissions; the AWS-managed write-only policy is attached only
# when tracing is on.
resource "aws_iam_role_policy_attachment" "xray" {
  for_each   = var.tracing ? local.functions : {}
  role       = aws_iam_role.function[each.key].name
  policy_arn = "arn:${var.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days setting (30 days by default); a year of debug logs is cost without use here.
  for_each          = local.functions
  name              = "/aws/lambda/${var.function_names[each.key]}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.encrypt_logs ? var.kms_key_arn : null
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:The functions call only public AWS APIs; a VPC would need NAT or endpoints for no gain.
  #checkov:skip=CKV_AWS_272:Code signing needs AWS Signer profiles; the package is built reproducibly by `make build` from this repository.
  #checkov:skip=CKV_AWS_173:The environment holds no secrets (ids, names, thresholds); Lambda encrypts it at rest with an AWS-managed key.
  #checkov:skip=CKV_AWS_116:Failed asynchronous invocations go to the SQS dead-letter queue through aws_lambda_function_event_invoke_config (on-failure destination), which records the error too.
  for_each                       = local.functions
  function_name                  = var.function_names[each.key]
  description                    = each.value.description
  role                           = aws_iam_role.function[each.key].arn
  runtime                        = "python3.12"
  architectures                  = ["x86_64"]
  handler                        = each.value.handler
  filename                       = var.functions_zip_path
  source_code_hash               = filebase64sha256(var.functions_zip_path)
  timeout                        = each.value.timeout
  memory_size                    = var.memory_mb
  reserved_concurrent_executions = var.reserved_concurrency[each.key]

  environment {
    variables = local.environment
  }

  tracing_config {
    mode = var.tracing ? "Active" : "PassThrough"
  }

  depends_on = [
    aws_cloudwatch_log_group.function,
    aws_iam_role_policy.function,
  ]
}

resource "aws_lambda_function_event_invoke_config" "this" {
  for_each                     = local.functions
  function_name                = aws_lambda_function.this[each.key].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dlq.arn
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  for_each          = local.functions
  alarm_name        = "${var.function_names[each.key]}-errors"
  alarm_description = "The ${var.function_names[each.key]} function failed (an unhandled error, e.g. an AWS API failure or a timeout; refused requests answer ok:false and do not count). What to do: open the log group /aws/lambda/${var.function_names[each.key]} and search for ERROR. ${replace(local.error_advice[each.key], "{function}", var.function_names[each.key])}"
  namespace         = "AWS/Lambda"
  metric_name       = "Errors"
  dimensions = {
    FunctionName = aws_lambda_function.this[each.key].function_name
  }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alert_topic_arn]
}

# --------------------------------------------------------------------------------------------------
# The schedule: a re-check every few minutes, so a declined stop never leaves the instance running
# for ever. The stop function recognises the EventBridge "Scheduled Event" and verifies idleness.
# --------------------------------------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "recheck" {
  name                = "${var.name}-stop-recheck"
  description         = "Ask ${var.function_names.stop} to re-check idleness every ${var.recheck_minutes} minute(s)"
  schedule_expression = local.schedule_expression
}

resource "aws_cloudwatch_event_target" "recheck" {
  rule      = aws_cloudwatch_event_rule.recheck.name
  target_id = "stop-function"
  arn       = aws_lambda_function.this["stop"].arn
}

resource "aws_lambda_permission" "recheck" {
  statement_id   = "AllowEventBridgeRecheck"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this["stop"].function_name
  principal      = "events.amazonaws.com"
  source_arn     = aws_cloudwatch_event_rule.recheck.arn
  source_account = var.account_id
}

# --------------------------------------------------------------------------------------------------
# The weekly cost report's schedule (EventBridge cron, UTC). The function recognises the
# "Scheduled Event" and emails the report through the alerts topic.
# --------------------------------------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "cost_report" {
  count               = var.cost_report_enabled ? 1 : 0
  name                = "${var.name}-cost-report"
  description         = "Send the ${var.function_names.cost_report} weekly cost report (${var.cost_report_schedule}, UTC)"
  schedule_expression = var.cost_report_schedule
}

resource "aws_cloudwatch_event_target" "cost_report" {
  count     = length(aws_cloudwatch_event_rule.cost_report)
  rule      = aws_cloudwatch_event_rule.cost_report[0].name
  target_id = "cost-report-function"
  arn       = aws_lambda_function.this["cost_report"].arn
}

resource "aws_lambda_permission" "cost_report" {
  count          = length(aws_cloudwatch_event_rule.cost_report)
  statement_id   = "AllowEventBridgeCostReport"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this["cost_report"].function_name
  principal      = "events.amazonaws.com"
  source_arn     = aws_cloudwatch_event_rule.cost_report[0].arn
  source_account = var.account_id
}
