output "topic_arn" {
  description = "ARN of the encrypted alerts topic."
  value       = aws_sns_topic.alerts.arn
}

output "topic_name" {
  description = "Name of the alerts topic."
  value       = aws_sns_topic.alerts.name
}

output "budget_names" {
  description = "Names of the monthly budgets (normal, peak)."
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
