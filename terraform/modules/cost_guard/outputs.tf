output "budget_names" {
  description = "Names of the monthly budgets (normal, peak, and hard_cap with a cap)."
  value       = { for k, b in aws_budgets_budget.monthly : k => b.name }
}

output "budgets" {
  description = "The monthly budgets by key: name and limit in USD (the dashboard's cost text)."
  value       = { for k, b in local.budgets : k => { name = b.name, limit = b.limit } }
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
