output "alarm_names" {
  description = "Names of the idle metric alarms by signal (cpu, network, queue, gpu)."
  value       = { for k, a in aws_cloudwatch_metric_alarm.idle : k => a.alarm_name }
}

output "alarm_arns" {
  description = "ARNs of the idle metric alarms by signal, and of the composite alarm (composite)."
  value       = merge({ for k, a in aws_cloudwatch_metric_alarm.idle : k => a.arn }, { composite = aws_cloudwatch_composite_alarm.idle.arn })
}

output "composite_alarm_name" {
  description = "Name of the composite idle alarm."
  value       = aws_cloudwatch_composite_alarm.idle.alarm_name
}

output "composite_alarm_arn" {
  description = "ARN of the composite idle alarm."
  value       = aws_cloudwatch_composite_alarm.idle.arn
}

output "alarm_rule" {
  description = "The composite alarm's rule."
  value       = local.alarm_rule
}

output "evaluation" {
  description = "Period (s), evaluation periods and threshold of each idle alarm."
  value = {
    for k, a in local.alarms : k => {
      period             = a.period
      evaluation_periods = local.evaluation_periods[k]
      threshold          = a.threshold
      comparison         = a.comparison
    }
  }
}
