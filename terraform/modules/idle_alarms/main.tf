# Idle detection in CloudWatch: four metric alarms that are in ALARM when their signal has been idle
# for idle_minutes, and a composite alarm (all four idle) whose action invokes the stop function
# directly. The function verifies idleness itself before it stops anything.
#
# Missing data counts as idle (treat_missing_data = "breaching"): a silent agent, or no EC2
# datapoints yet, must not keep the instance running. While the instance is stopped everything is
# missing, so the composite stays in ALARM; it fires again only after activity turned it OK.

locals {
  ec2_period   = var.detailed_monitoring ? 60 : 300
  agent_period = var.metrics_seconds <= 60 ? 60 : 300

  alarms = {
    cpu = {
      description = "CPUUtilization of ${var.instance_id} stayed below ${var.cpu_idle_percent}% (per-period maximum) for ${var.idle_minutes} min"
      namespace   = "AWS/EC2"
      metric      = "CPUUtilization"
      statistic   = "Maximum"
      period      = local.ec2_period
      comparison  = "LessThanThreshold"
      threshold   = var.cpu_idle_percent
    }
    network = {
      description = "NetworkOut of ${var.instance_id} stayed below ${var.network_idle_bytes} bytes per 5 min for ${var.idle_minutes} min"
      namespace   = "AWS/EC2"
      metric      = "NetworkOut"
      statistic   = "Sum"
      period      = local.ec2_period
      comparison  = "LessThanThreshold"
      threshold   = var.network_idle_bytes * local.ec2_period / 300
    }
    queue = {
      description = "ComfyUI's queue on ${var.instance_id} stayed empty (QueueDepth <= ${var.queue_idle_threshold}, from the agent) for ${var.idle_minutes} min; no data counts as empty"
      namespace   = var.metrics_namespace
      metric      = "QueueDepth"
      statistic   = "Maximum"
      period      = local.agent_period
      comparison  = "LessThanOrEqualToThreshold"
      threshold   = var.queue_idle_threshold
    }
    gpu = {
      description = "GPUUtilization of ${var.instance_id} (from the agent) stayed below ${var.gpu_idle_percent}% for ${var.idle_minutes} min; no data counts as idle"
      namespace   = var.metrics_namespace
      metric      = "GPUUtilization"
      statistic   = "Maximum"
      period      = local.agent_period
      comparison  = "LessThanThreshold"
      threshold   = var.gpu_idle_percent
    }
  }

  # Whole periods covering at least idle_minutes.
  evaluation_periods = { for k, a in local.alarms : k => max(1, ceil(var.idle_minutes * 60 / a.period)) }

  alarm_rule = join(" AND ", [for k in sort(keys(local.alarms)) : "ALARM(\"${aws_cloudwatch_metric_alarm.idle[k].alarm_name}\")"])
}

resource "aws_cloudwatch_metric_alarm" "idle" {
  for_each            = local.alarms
  alarm_name          = "${var.name}-idle-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = { InstanceId = var.instance_id }
  statistic           = each.value.statistic
  period              = each.value.period
  evaluation_periods  = local.evaluation_periods[each.key]
  datapoints_to_alarm = local.evaluation_periods[each.key]
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  treat_missing_data  = "breaching"
}

resource "aws_cloudwatch_composite_alarm" "idle" {
  alarm_name        = "${var.name}-idle"
  alarm_description = "Every idle signal of ${var.instance_id} (CPU, NetworkOut, ComfyUI queue, GPU) has been idle for ${var.idle_minutes} min: invoke ${var.stop_function_name}, which verifies idleness before it stops the instance."
  alarm_rule        = local.alarm_rule
  actions_enabled   = true
  alarm_actions     = [var.stop_function_arn]
}

# Composite alarms invoke Lambda through this service principal (not cloudwatch.amazonaws.com).
resource "aws_lambda_permission" "composite_alarm" {
  statement_id   = "AllowIdleCompositeAlarm"
  action         = "lambda:InvokeFunction"
  function_name  = var.stop_function_name
  principal      = "lambda.alarms.cloudwatch.amazonaws.com"
  source_arn     = aws_cloudwatch_composite_alarm.idle.arn
  source_account = var.account_id
}
