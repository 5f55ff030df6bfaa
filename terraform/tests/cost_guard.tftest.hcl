# modules/cost_guard: the two budgets with ACTUAL 80% / 100% and FORECASTED 100% notifications to the
# emails and the alerts topic, the hard cap (a third budget, its own encrypted topic, the budget
# function's subscription and permission) only with hard_cap_usd. The alerts topic is tested in
# alerts.tftest.hcl, the dashboard in dashboard.tftest.hcl.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name              = "gpu-autostop"
  account_id        = "123456789012"
  kms_key_arn       = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  alerts_topic_arn  = "arn:aws:sns:us-east-1:123456789012:gpu-autostop-alerts"
  alert_emails      = ["owner@example.com", "ops@example.com"]
  budget_normal_usd = 50
  budget_peak_usd   = 150
}

# A distinct ARN for the hard-cap topic (the shared mock gives every topic the alerts topic's).
override_resource {
  target = aws_sns_topic.hard_cap
  values = { arn = "arn:aws:sns:us-east-1:123456789012:gpu-autostop-hard-cap" }
}

run "defaults" {
  module {
    source = "./modules/cost_guard"
  }

  assert {
    condition     = { for k, b in aws_budgets_budget.monthly : k => [b.limit_amount, b.limit_unit, b.time_unit, b.budget_type] } == { normal = ["50.00", "USD", "MONTHLY", "COST"], peak = ["150.00", "USD", "MONTHLY", "COST"] }
    error_message = "Monthly cost budgets of $50 and $150."
  }

  assert {
    condition     = { for k, b in aws_budgets_budget.monthly : k => [for c in b.cost_types : [c.include_credit, c.include_refund]] } == { normal = [[false, false]], peak = [[false, false]] }
    error_message = "The budgets must leave credits and refunds out by default (AWS counts them unless told not to, and on an account living on credits no budget would fire)."
  }

  assert {
    condition     = alltrue([for b in aws_budgets_budget.monthly : toset([for n in b.notification : "${n.notification_type}:${n.threshold}:${n.threshold_type}:${n.comparison_operator}"]) == toset(["ACTUAL:80:PERCENTAGE:GREATER_THAN", "ACTUAL:100:PERCENTAGE:GREATER_THAN", "FORECASTED:100:PERCENTAGE:GREATER_THAN"])])
    error_message = "Each budget must notify at 80% and 100% of actual and 100% of forecasted spend."
  }

  assert {
    condition     = alltrue(flatten([for b in aws_budgets_budget.monthly : [for n in b.notification : n.subscriber_email_addresses == toset(var.alert_emails) && n.subscriber_sns_topic_arns == toset([var.alerts_topic_arn])]]))
    error_message = "Every budget notification must go to the emails and to the topic."
  }

  assert {
    condition     = alltrue([for b in aws_budgets_budget.monthly : length(b.cost_filter) == 0])
    error_message = "Budgets cover the whole account unless the tag filter is asked for."
  }

  assert {
    condition     = length(aws_sns_topic.hard_cap) == 0 && length(aws_sns_topic_policy.hard_cap) == 0 && length(aws_sns_topic_subscription.hard_cap_function) == 0 && length(aws_lambda_permission.hard_cap_topic) == 0 && keys(aws_budgets_budget.monthly) == ["normal", "peak"] && output.hard_cap_topic_arn == null
    error_message = "Without hard_cap_usd there is no hard-cap budget, topic, subscription or permission."
  }
}

run "hard_cap" {
  state_key = "hard_cap"

  module {
    source = "./modules/cost_guard"
  }

  variables {
    hard_cap_usd      = 80
    budget_function   = { name = "gpu-autostop-budget", arn = "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-budget" }
    budget_filter_tag = { key = "Project", value = "gpu-autostop" }
  }

  assert {
    condition     = [for k in ["normal", "peak", "hard_cap"] : [aws_budgets_budget.monthly[k].name, aws_budgets_budget.monthly[k].limit_amount, aws_budgets_budget.monthly[k].time_unit, aws_budgets_budget.monthly[k].budget_type]] == [["gpu-autostop-normal", "50.00", "MONTHLY", "COST"], ["gpu-autostop-peak", "150.00", "MONTHLY", "COST"], ["gpu-autostop-hard-cap", "80.00", "MONTHLY", "COST"]] && length(aws_budgets_budget.monthly) == 3
    error_message = "A monthly cost budget of hard_cap_usd, named <name>-hard-cap, next to the other two."
  }

  assert {
    condition     = alltrue([for b in aws_budgets_budget.monthly : [for c in b.cost_types : [c.include_credit, c.include_refund]] == [[false, false]]])
    error_message = "The hard cap's budget, like the others, must count costs before credits and refunds: a cap that credits hide never trips."
  }

  assert {
    condition     = [for n in aws_budgets_budget.monthly["hard_cap"].notification : "${n.notification_type}:${n.threshold}:${n.threshold_type}:${n.comparison_operator}"] == ["ACTUAL:100:PERCENTAGE:GREATER_THAN"]
    error_message = "The hard cap's budget notifies once, when actual spend passes 100% (a forecast never trips the cap)."
  }

  assert {
    condition     = alltrue([for n in aws_budgets_budget.monthly["hard_cap"].notification : n.subscriber_sns_topic_arns == toset(["arn:aws:sns:us-east-1:123456789012:gpu-autostop-hard-cap"]) && n.subscriber_email_addresses == toset(var.alert_emails)])
    error_message = "The hard cap's notification goes to its own topic (and the emails), not to the alerts topic."
  }

  assert {
    condition     = alltrue(flatten([for k in ["normal", "peak"] : [for n in aws_budgets_budget.monthly[k].notification : n.subscriber_sns_topic_arns == toset([var.alerts_topic_arn])]]))
    error_message = "The other budgets' notifications stay on the alerts topic: they must never reach the budget function."
  }

  assert {
    condition     = alltrue([for b in aws_budgets_budget.monthly : [for f in b.cost_filter : [f.name, f.values]] == [["TagKeyValue", tolist(["user:Project$gpu-autostop"])]]])
    error_message = "The hard cap's budget uses the same filter as the others."
  }

  assert {
    condition     = aws_sns_topic.hard_cap[0].name == "gpu-autostop-hard-cap" && aws_sns_topic.hard_cap[0].kms_master_key_id == var.kms_key_arn && output.hard_cap_topic_arn == "arn:aws:sns:us-east-1:123456789012:gpu-autostop-hard-cap"
    error_message = "The hard-cap topic must be encrypted with the project key (whose policy lets Budgets use it)."
  }

  assert {
    condition = [for s in jsondecode(aws_sns_topic_policy.hard_cap[0].policy).Statement : [s.Principal, s.Action, s.Resource, s.Condition] if s.Sid == "BudgetsPublish"] == [
      [{ Service = "budgets.amazonaws.com" }, "SNS:Publish", "arn:aws:sns:us-east-1:123456789012:gpu-autostop-hard-cap", { StringEquals = { "aws:SourceAccount" = "123456789012" } }],
    ] && aws_sns_topic_policy.hard_cap[0].arn == "arn:aws:sns:us-east-1:123456789012:gpu-autostop-hard-cap"
    error_message = "Only this account's budgets (not CloudWatch alarms) may publish to the hard-cap topic."
  }

  assert {
    condition     = [aws_sns_topic_subscription.hard_cap_function[0].topic_arn, aws_sns_topic_subscription.hard_cap_function[0].protocol, aws_sns_topic_subscription.hard_cap_function[0].endpoint] == ["arn:aws:sns:us-east-1:123456789012:gpu-autostop-hard-cap", "lambda", var.budget_function.arn]
    error_message = "The budget function must be subscribed to the hard-cap topic."
  }

  assert {
    condition     = [aws_lambda_permission.hard_cap_topic[0].principal, aws_lambda_permission.hard_cap_topic[0].source_arn, aws_lambda_permission.hard_cap_topic[0].function_name, aws_lambda_permission.hard_cap_topic[0].source_account, aws_lambda_permission.hard_cap_topic[0].action] == ["sns.amazonaws.com", "arn:aws:sns:us-east-1:123456789012:gpu-autostop-hard-cap", "gpu-autostop-budget", "123456789012", "lambda:InvokeFunction"]
    error_message = "Only the hard-cap topic may invoke the budget function through SNS."
  }
}

run "rejects_hard_cap_without_function" {
  command = plan

  module {
    source = "./modules/cost_guard"
  }

  variables {
    hard_cap_usd = 80
  }

  expect_failures = [var.budget_function]
}

run "tag_filter_no_emails" {
  state_key = "options"

  module {
    source = "./modules/cost_guard"
  }

  variables {
    budget_filter_tag = { key = "Project", value = "gpu-autostop" }
    alert_emails      = []
    include_credits   = true
  }

  assert {
    condition     = alltrue([for b in aws_budgets_budget.monthly : [for c in b.cost_types : [c.include_credit, c.include_refund]] == [[true, true]]]) && length(aws_budgets_budget.monthly) == 2
    error_message = "include_credits = true must count credits and refunds (the net cost)."
  }

  assert {
    condition     = alltrue([for b in aws_budgets_budget.monthly : [for f in b.cost_filter : [f.name, f.values]] == [["TagKeyValue", tolist(["user:Project$gpu-autostop"])]]])
    error_message = "The tag filter must use the cost-allocation tag syntax user:KEY$VALUE."
  }

  assert {
    condition     = alltrue(flatten([for b in aws_budgets_budget.monthly : [for n in b.notification : length(n.subscriber_email_addresses) == 0 && length(n.subscriber_sns_topic_arns) == 1]]))
    error_message = "Without emails the budgets still notify the topic."
  }
}
