# Alerts: the encrypted topic every part publishes to (function errors, dead-letter queue and cap
# alarms, the budgets, the stop and cost-report emails) and its email subscriptions.

locals {
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
