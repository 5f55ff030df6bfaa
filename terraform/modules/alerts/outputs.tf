output "topic_arn" {
  description = "ARN of the encrypted alerts topic. Read from the topic policy, so whatever publishes to it (budgets, alarms) is created after the policy lets it."
  value       = aws_sns_topic_policy.alerts.arn
}

output "topic_name" {
  description = "Name of the alerts topic."
  value       = aws_sns_topic.alerts.name
}
