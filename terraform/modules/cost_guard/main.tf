# Cost guard: the two monthly AWS Budgets (actual 80% / 100%, forecasted 100%, to the emails and the
# alerts topic) and the optional hard cap (a third budget whose ACTUAL notification reaches the budget
# function through a topic of its own). The alerts topic is modules/alerts; the dashboard
# modules/dashboard.

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
      subscriber_sns_topic_arns  = [each.value.topic == "alerts" ? var.alerts_topic_arn : aws_sns_topic.hard_cap[0].arn]
    }
  }

  # The alerts topic's policy comes first: alerts_topic_arn is read from that policy (modules/alerts).
  depends_on = [aws_sns_topic_policy.hard_cap]
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
