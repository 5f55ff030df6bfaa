# modules/alerts: the encrypted alerts topic, its policy (this account, Budgets and CloudWatch alarms)
# and one email subscription per address.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name         = "gpu-autostop"
  account_id   = "123456789012"
  kms_key_arn  = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  alert_emails = ["owner@example.com", "ops@example.com"]
}

run "defaults" {
  module {
    source = "./modules/alerts"
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
    condition = [for s in jsondecode(aws_sns_topic_policy.alerts.policy).Statement : s.Principal if s.Sid == "BudgetsAndAlarmsPublish"] == [
      { Service = ["budgets.amazonaws.com", "cloudwatch.amazonaws.com"] },
    ]
    error_message = "Budgets and CloudWatch alarms must be allowed to publish to the topic."
  }

  assert {
    condition     = output.topic_arn == aws_sns_topic.alerts.arn && aws_sns_topic_policy.alerts.arn == aws_sns_topic.alerts.arn && output.topic_name == "gpu-autostop-alerts"
    error_message = "The module answers the topic (through its policy, so publishers wait for the policy)."
  }
}

run "no_emails" {
  state_key = "no_emails"

  module {
    source = "./modules/alerts"
  }

  variables {
    alert_emails = []
  }

  assert {
    condition     = length(aws_sns_topic_subscription.email) == 0
    error_message = "Without emails there is no subscription."
  }
}

run "rejects_more_than_ten_emails" {
  command = plan

  module {
    source = "./modules/alerts"
  }

  variables {
    alert_emails = [for i in range(11) : "a${i}@example.com"]
  }

  expect_failures = [var.alert_emails]
}
