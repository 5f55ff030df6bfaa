output "topic_arn" {
  description = "ARN of the encrypted alerts topic."
  value       = aws_sns_topic.alerts.arn
}

output "topic_name" {
  description = "Name of the alerts topic."
  value       = aws_sns_topic.alerts.name
}

output "budget_names" {
  description = "Names of the monthly budgets (normal, peak, and hard_cap with a cap)."
  value       = { for k, b in aws_budgets_budget.monthly : k => b.name }
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard, or null."
  value       = var.create_dashboard ? aws_cloudwatch_dashboard.main[0].dashboard_name : null
}

output "dashboard_url" {
  description = "Console URL of the dashboard, or null."
  value       = var.create_dashboard ? "https://${var.region}.console.aws.amazon.com/cloudwatch/home?region=${var.region}#dashboards/dashboard/${aws_cloudwatch_dashboard.main[0].dashboard_name}" : null
}

output "hard_cap_topic_arn" {
  description = "ARN of the topic the hard cap's budget publishes to (its subscriber is the budget function), or null."
  value       = one(aws_sns_topic.hard_cap[*].arn)
}

output "hard_cap" {
  description = "The hard cap's wiring, or null without hard_cap_usd: budget name and limit, topic, the function subscribed to it and the function the topic may invoke."
  value = local.hard_cap ? {
    budget_name             = aws_budgets_budget.monthly["hard_cap"].name
    limit_usd               = aws_budgets_budget.monthly["hard_cap"].limit_amount
    topic_arn               = aws_sns_topic.hard_cap[0].arn
    subscribed_function_arn = aws_sns_topic_subscription.hard_cap_function[0].endpoint
    invoke_permission = {
      function_name = aws_lambda_permission.hard_cap_topic[0].function_name
      principal     = aws_lambda_permission.hard_cap_topic[0].principal
      source_arn    = aws_lambda_permission.hard_cap_topic[0].source_arn
    }
  } : null
}
