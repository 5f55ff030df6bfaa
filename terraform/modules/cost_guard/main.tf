# Cost guard: the encrypted alerts topic and its email subscriptions, the two monthly AWS Budgets
# (actual 80% / 100%, forecasted 100%, to the emails and the topic), the optional hard cap (a third
# budget whose ACTUAL notification reaches the budget function through a topic of its own) and the
# dashboard.

locals {
  hard_cap = var.hard_cap_usd != null

  budget_notifications = [
    { type = "ACTUAL", threshold = 80 },
    { type = "ACTUAL", threshold = 100 },
    { type = "FORECASTED", threshold = 100 },
  ]

  # The hard cap's budget notifies only when actual spend passes it (a forecast never trips the
  # cap), to the emails and to the hard-cap topic, whose one subscriber is the budget function.
  # A Budgets notification takes a single SNS topic, so it cannot also go to the alerts topic; the
  # budget function emails there when it trips the cap.
  budgets = merge(
    {
      normal = { name = "${var.name}-normal", limit = var.budget_normal_usd, notifications = local.budget_notifications, topic = "alerts" }
      peak   = { name = "${var.name}-peak", limit = var.budget_peak_usd, notifications = local.budget_notifications, topic = "alerts" }
    },
    local.hard_cap ? {
      hard_cap = { name = "${var.name}-hard-cap", limit = var.hard_cap_usd, notifications = [{ type = "ACTUAL", threshold = 100 }], topic = "hard_cap" }
    } : {},
  )

  topic_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountPrincipalsWithIamPermission"
        Effect    = "Allow"
        Principal = { AWS = "arn:${var.partition}:iam::${var.account_id}:root" }
        Action = [
          "SNS:Publish",
          "SNS:Subscribe",
          "SNS:GetTopicAttributes",
          "SNS:ListSubscriptionsByTopic",
        ]
        Resource = aws_sns_topic.alerts.arn
      },
      {
        # Budgets notifications and CloudWatch alarms (function errors, dead-letter queue).
        Sid       = "BudgetsAndAlarmsPublish"
        Effect    = "Allow"
        Principal = { Service = ["budgets.amazonaws.com", "cloudwatch.amazonaws.com"] }
        Action    = "SNS:Publish"
        Resource  = aws_sns_topic.alerts.arn
        Condition = { StringEquals = { "aws:SourceAccount" = var.account_id } }
      },
    ]
  }
}

resource "aws_sns_topic" "alerts" {
  name              = "${var.name}-alerts"
  display_name      = var.name
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = jsonencode(local.topic_policy)
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alert_emails)
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_budgets_budget" "monthly" {
  for_each     = local.budgets
  name         = each.value.name
  budget_type  = "COST"
  limit_amount = format("%.2f", each.value.limit)
  limit_unit   = "USD"
  time_unit    = "MONTHLY"

  # Without cost_types a budget counts credits and refunds ("IncludeCredit ... The default value
  # is true", AWS Budgets API reference, CostTypes): on an account living on credits the net cost
  # stays near $0 and no budget ever fires. Everything else keeps AWS's defaults.
  cost_types {
    include_credit = var.include_credits
    include_refund = var.include_credits
  }

  dynamic "cost_filter" {
    for_each = var.budget_filter_tag == null ? [] : [var.budget_filter_tag]
    content {
      name   = "TagKeyValue"
      values = [format("user:%s$%s", cost_filter.value.key, cost_filter.value.value)]
    }
  }

  dynamic "notification" {
    for_each = each.value.notifications
    content {
      notification_type          = notification.value.type
      comparison_operator        = "GREATER_THAN"
      threshold                  = notification.value.threshold
      threshold_type             = "PERCENTAGE"
      subscriber_email_addresses = var.alert_emails
      subscriber_sns_topic_arns  = [each.value.topic == "alerts" ? aws_sns_topic.alerts.arn : aws_sns_topic.hard_cap[0].arn]
    }
  }

  depends_on = [aws_sns_topic_policy.alerts, aws_sns_topic_policy.hard_cap]
}

# --------------------------------------------------------------------------------------------------
# Hard cap (only with hard_cap_usd): AWS Budgets -> encrypted topic -> budget function. A topic of
# its own, so the function sees only the cap budget's notifications (not the 80%/100% alerts of the
# other budgets, nor the alarms on the alerts topic). The project key's policy already lets Budgets
# use the key; this topic policy admits this account's budgets only.
# --------------------------------------------------------------------------------------------------

resource "aws_sns_topic" "hard_cap" {
  count             = local.hard_cap ? 1 : 0
  name              = "${var.name}-hard-cap"
  display_name      = "${var.name} hard cap"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic_policy" "hard_cap" {
  count = local.hard_cap ? 1 : 0
  arn   = aws_sns_topic.hard_cap[0].arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountPrincipalsWithIamPermission"
        Effect    = "Allow"
        Principal = { AWS = "arn:${var.partition}:iam::${var.account_id}:root" }
        Action = [
          "SNS:Publish",
          "SNS:Subscribe",
          "SNS:GetTopicAttributes",
          "SNS:ListSubscriptionsByTopic",
        ]
        Resource = aws_sns_topic.hard_cap[0].arn
      },
      {
        Sid       = "BudgetsPublish"
        Effect    = "Allow"
        Principal = { Service = "budgets.amazonaws.com" }
        Action    = "SNS:Publish"
        Resource  = aws_sns_topic.hard_cap[0].arn
        Condition = { StringEquals = { "aws:SourceAccount" = var.account_id } }
      },
    ]
  })
}

resource "aws_sns_topic_subscription" "hard_cap_function" {
  count     = local.hard_cap ? 1 : 0
  topic_arn = aws_sns_topic.hard_cap[0].arn
  protocol  = "lambda"
  endpoint  = var.budget_function.arn
}

resource "aws_lambda_permission" "hard_cap_topic" {
  count          = local.hard_cap ? 1 : 0
  statement_id   = "AllowHardCapTopic"
  action         = "lambda:InvokeFunction"
  function_name  = var.budget_function.name
  principal      = "sns.amazonaws.com"
  source_arn     = aws_sns_topic.hard_cap[0].arn
  source_account = var.account_id
}

# --------------------------------------------------------------------------------------------------
# Dashboard
# --------------------------------------------------------------------------------------------------

locals {
  service_dims = ["service", var.service_name]

  dashboard_widgets = [
    {
      type = "text", x = 0, y = 0, width = 24, height = 2
      properties = {
        markdown = "## ${var.name}\nGPU instance `${var.instance_id}`: started on demand, stopped when idle (composite alarm `${var.composite_alarm_name}` and a scheduled re-check). Emergency stop: `make stop`."
      }
    },
    {
      type = "alarm", x = 0, y = 2, width = 24, height = 3
      properties = {
        title  = "Idle signals (ALARM = idle)"
        alarms = [for k in sort(keys(var.idle_alarm_arns)) : var.idle_alarm_arns[k]]
      }
    },
    {
      type = "metric", x = 0, y = 5, width = 12, height = 6
      properties = {
        title   = "Instance state: running when CPU datapoints arrive"
        region  = var.region
        view    = "timeSeries"
        stat    = "SampleCount"
        period  = 300
        metrics = [["AWS/EC2", "CPUUtilization", "InstanceId", var.instance_id, { label = "datapoints (0 or none = stopped)" }]]
      }
    },
    {
      type = "metric", x = 12, y = 5, width = 12, height = 6
      properties = {
        title  = "ComfyUI queue depth and sessions (agent)"
        region = var.region
        view   = "timeSeries"
        stat   = "Maximum"
        period = 60
        metrics = [
          [var.metrics_namespace, "QueueDepth", "InstanceId", var.instance_id],
          [var.metrics_namespace, "ActiveSessions", "InstanceId", var.instance_id],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 11, width = 12, height = 6
      properties = {
        title   = "GPU utilization % (agent)"
        region  = var.region
        view    = "timeSeries"
        stat    = "Maximum"
        period  = 60
        metrics = [[var.metrics_namespace, "GPUUtilization", "InstanceId", var.instance_id]]
        yAxis   = { left = { min = 0, max = 100 } }
      }
    },
    {
      type = "metric", x = 12, y = 11, width = 12, height = 6
      properties = {
        title  = "CPU % and NetworkOut"
        region = var.region
        view   = "timeSeries"
        period = 300
        metrics = [
          ["AWS/EC2", "CPUUtilization", "InstanceId", var.instance_id, { stat = "Maximum" }],
          ["AWS/EC2", "NetworkOut", "InstanceId", var.instance_id, { stat = "Sum", yAxis = "right" }],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 17, width = 12, height = 6
      properties = {
        title  = "Starts, stops, declined stops"
        region = var.region
        view   = "timeSeries"
        stat   = "Sum"
        period = 3600
        metrics = [
          concat([var.metrics_namespace, "Starts"], local.service_dims),
          concat([var.metrics_namespace, "Stops"], local.service_dims),
          concat([var.metrics_namespace, "StopsDeclined"], local.service_dims),
          concat([var.metrics_namespace, "StartToReadySeconds"], local.service_dims, [{ stat = "Average", yAxis = "right" }]),
        ]
      }
    },
    {
      type = "metric", x = 12, y = 17, width = 12, height = 6
      properties = {
        title  = "Function errors and dead-letter queue depth"
        region = var.region
        view   = "timeSeries"
        period = 300
        metrics = concat(
          [for k in sort(keys(var.function_names)) : ["AWS/Lambda", "Errors", "FunctionName", var.function_names[k], { stat = "Sum" }]],
          [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.dlq_name, { stat = "Maximum", yAxis = "right" }]],
        )
      }
    },
    {
      type = "metric", x = 0, y = 23, width = 12, height = 6
      properties = {
        title  = "Hard cap and cost reports"
        region = var.region
        view   = "timeSeries"
        stat   = "Sum"
        period = 86400
        metrics = [
          concat([var.metrics_namespace, "HardCapTrips"], local.service_dims),
          concat([var.metrics_namespace, "HardCapStops"], local.service_dims),
          concat([var.metrics_namespace, "CostReports"], local.service_dims),
        ]
      }
    },
    {
      type = "text", x = 12, y = 23, width = 12, height = 6
      properties = {
        markdown = join("\n", [
          "## Cost",
          "Budgets: ${join(", ", [for k in sort(keys(local.budgets)) : "`${local.budgets[k].name}` ${format("$%.2f", local.budgets[k].limit)}"])}.",
          local.hard_cap ? "Hard cap: ${format("$%.2f", var.hard_cap_usd)} a month, on the project's own estimate and on the `${var.name}-hard-cap` budget. Tripped? `make cap-status CAP_PARAMETER=${var.cap_parameter}`. Reset: `make reset-cap CAP_PARAMETER=${var.cap_parameter}`." : "No hard cap (set `hard_cap_usd`).",
          "Usage ledger (running hours, starts, images): `aws ssm get-parameter --name ${var.ledger_parameter}`. The weekly cost report emails Cost Explorer's figures next to it.",
        ])
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "main" {
  count          = var.create_dashboard ? 1 : 0
  dashboard_name = var.name
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
