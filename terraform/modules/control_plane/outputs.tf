output "function_names" {
  description = "Function names by role (start, status, stop, cost_report, budget)."
  value       = { for k, f in aws_lambda_function.this : k => f.function_name }
}

output "function_arns" {
  description = "Function ARNs by role (start, status, stop, cost_report, budget)."
  value       = { for k, f in aws_lambda_function.this : k => f.arn }
}

output "role_arns" {
  description = "Execution role ARNs by function."
  value       = { for k, r in aws_iam_role.function : k => r.arn }
}

output "log_group_names" {
  description = "Log group names by function."
  value       = { for k, g in aws_cloudwatch_log_group.function : k => g.name }
}

output "environment" {
  description = "The environment every function gets (docs/operations.md#the-functions-environment)."
  value       = local.environment
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_name" {
  description = "Name of the dead-letter queue."
  value       = aws_sqs_queue.dlq.name
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "agent_state_parameter_name" {
  description = "Name of the agent state record parameter."
  value       = aws_ssm_parameter.shared["agent_state"].name
}

output "agent_state_parameter_arn" {
  description = "ARN of the agent state record parameter."
  value       = aws_ssm_parameter.shared["agent_state"].arn
}

output "lease_parameter_name" {
  description = "Name of the lease parameter."
  value       = aws_ssm_parameter.shared["lease"].name
}

output "lease_parameter_arn" {
  description = "ARN of the lease parameter."
  value       = aws_ssm_parameter.shared["lease"].arn
}

output "ledger_parameter_name" {
  description = "Name of the usage ledger parameter."
  value       = aws_ssm_parameter.shared["ledger"].name
}

output "ledger_parameter_arn" {
  description = "ARN of the usage ledger parameter."
  value       = aws_ssm_parameter.shared["ledger"].arn
}

output "cap_parameter_name" {
  description = "Name of the hard cap's flag parameter."
  value       = aws_ssm_parameter.shared["cap"].name
}

output "cap_parameter_arn" {
  description = "ARN of the hard cap's flag parameter."
  value       = aws_ssm_parameter.shared["cap"].arn
}

output "cost_report_rule_arn" {
  description = "ARN of the EventBridge rule that triggers the weekly cost report, or null."
  value       = one(aws_cloudwatch_event_rule.cost_report[*].arn)
}

output "cost_report_schedule" {
  description = "The cost report's schedule expression, or null."
  value       = one(aws_cloudwatch_event_rule.cost_report[*].schedule_expression)
}

output "schedule_rule_arn" {
  description = "ARN of the EventBridge rule that sends the stop function its re-checks."
  value       = aws_cloudwatch_event_rule.recheck.arn
}

output "schedule_expression" {
  description = "The re-check schedule."
  value       = local.schedule_expression
}

output "error_alarm_names" {
  description = "Names of the Errors alarms by function, and of the dead-letter queue alarm."
  value       = merge({ for k, a in aws_cloudwatch_metric_alarm.errors : k => a.alarm_name }, { dlq = aws_cloudwatch_metric_alarm.dlq_depth.alarm_name })
}

output "iam_policies" {
  description = "Identity policy documents this module attaches, by function (JSON), for review and tests."
  value       = { for k, p in local.policies : k => jsonencode(p) }
}
