# modules/cost_guard: encrypted topic with email subscriptions, the two budgets with ACTUAL 80% /
# 100% and FORECASTED 100% notifications to the emails and the topic, the dashboard.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name                 = "gpu-autostop"
  region               = "us-east-1"
  account_id           = "123456789012"
  kms_key_arn          = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  alert_emails         = ["owner@example.com", "ops@example.com"]
  budget_normal_usd    = 50
  budget_peak_usd      = 150
  instance_id          = "i-0123456789abcdef0"
  metrics_namespace    = "GpuAutostop"
  service_name         = "gpu-autostop"
  function_names       = { start = "gpu-autostop-start", status = "gpu-autostop-status", stop = "gpu-autostop-stop" }
  dlq_name             = "gpu-autostop-dlq"
  idle_alarm_arns      = { composite = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:gpu-autostop-idle" }
  composite_alarm_name = "gpu-autostop-idle"
}

run "defaults" {
  module {
    source = "./modules/cost_guard"
  }

  assert {
    condition     = aws_sns_topic.alerts.kms_master_key_id == var.kms_key_arn
    error_message = "The alerts topic must be encrypted with the project key."
  }

  assert {
    condition     = { for k, s in aws_sns_topic_subscription.email : k => s.protocol } == { "owner@example.com" = "email", "ops@example.com" = "email" }
    error_message = "Every alert email must be subscribed to the topic."
  }

  assert {
    condition     = { for k, b in aws_budgets_budget.monthly : k => [b.limit_amount, b.limit_unit, b.time_unit, b.budget_type] } == { normal = ["50.00", "USD", "MONTHLY", "COST"], peak = ["150.00", "USD", "MONTHLY", "COST"] }
    error_message = "Monthly cost budgets of $50 and $150."
  }

  assert {
    condition     = alltrue([for b in aws_budgets_budget.monthly : toset([for n in b.notification : "${n.notification_type}:${n.threshold}:${n.threshold_type}:${n.comparison_operator}"]) == toset(["ACTUAL:80:PERCENTAGE:GREATER_THAN", "ACTUAL:100:PERCENTAGE:GREATER_THAN", "FORECASTED:100:PERCENTAGE:GREATER_THAN"])])
    error_message = "Each budget must notify at 80% and 100% of actual and 100% of forecasted spend."
  }

  assert {
    condition     = alltrue(flatten([for b in aws_budgets_budget.monthly : [for n in b.notification : n.subscriber_email_addresses == toset(var.alert_emails) && n.subscriber_sns_topic_arns == toset([aws_sns_topic.alerts.arn])]]))
    error_message = "Every budget notification must go to the emails and to the topic."
  }

  assert {
    condition     = alltrue([for b in aws_budgets_budget.monthly : length(b.cost_filter) == 0])
    error_message = "Budgets cover the whole account unless the tag filter is asked for."
  }

  assert {
    condition = [for s in jsondecode(aws_sns_topic_policy.alerts.policy).Statement : s.Principal if s.Sid == "BudgetsAndAlarmsPublish"] == [
      { Service = ["budgets.amazonaws.com", "cloudwatch.amazonaws.com"] },
    ]
    error_message = "Budgets and CloudWatch alarms must be allowed to publish to the topic."
  }

  assert {
    condition     = length(aws_cloudwatch_dashboard.main) == 1 && output.dashboard_name == "gpu-autostop"
    error_message = "The dashboard is created by default."
  }

  assert {
    condition = toset(flatten([for w in jsondecode(aws_cloudwatch_dashboard.main[0].dashboard_body).widgets : [for m in try(w.properties.metrics, []) : m[1]]])) == toset([
      "CPUUtilization", "QueueDepth", "ActiveSessions", "GPUUtilization", "NetworkOut",
      "Starts", "Stops", "StopsDeclined", "StartToReadySeconds", "Errors", "ApproximateNumberOfMessagesVisible",
    ])
    error_message = "The dashboard must show instance state, queue, GPU, CPU, network, starts/stops, declined stops, errors and DLQ depth."
  }
}

run "tag_filter_no_dashboard_no_emails" {
  state_key = "options"

  module {
    source = "./modules/cost_guard"
  }

  variables {
    budget_filter_tag = { key = "Project", value = "gpu-autostop" }
    create_dashboard  = false
    alert_emails      = []
  }

  assert {
    condition     = alltrue([for b in aws_budgets_budget.monthly : [for f in b.cost_filter : [f.name, f.values]] == [["TagKeyValue", tolist(["user:Project$gpu-autostop"])]]])
    error_message = "The tag filter must use the cost-allocation tag syntax user:KEY$VALUE."
  }

  assert {
    condition     = length(aws_cloudwatch_dashboard.main) == 0 && output.dashboard_url == null
    error_message = "create_dashboard = false must create no dashboard."
  }

  assert {
    condition     = length(aws_sns_topic_subscription.email) == 0 && alltrue(flatten([for b in aws_budgets_budget.monthly : [for n in b.notification : length(n.subscriber_email_addresses) == 0 && length(n.subscriber_sns_topic_arns) == 1]]))
    error_message = "Without emails the budgets still notify the topic."
  }
}
