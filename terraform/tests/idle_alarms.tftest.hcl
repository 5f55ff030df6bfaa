# modules/idle_alarms: thresholds, periods and the composite rule follow the variables; missing data
# counts as idle; the composite alarm invokes the stop function directly.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name               = "gpu-autostop"
  account_id         = "123456789012"
  instance_id        = "i-0123456789abcdef0"
  stop_function_arn  = "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-stop"
  stop_function_name = "gpu-autostop-stop"
  metrics_namespace  = "GpuAutostop"
  idle_minutes       = 10
  cpu_idle_percent   = 5
  network_idle_bytes = 1000000
  gpu_idle_percent   = 5
}

run "defaults" {
  module {
    source = "./modules/idle_alarms"
  }

  assert {
    condition = {
      for k, a in aws_cloudwatch_metric_alarm.idle : k => [a.namespace, a.metric_name, a.statistic, a.comparison_operator, a.threshold, a.period, a.evaluation_periods, a.datapoints_to_alarm]
      } == {
      cpu     = ["AWS/EC2", "CPUUtilization", "Maximum", "LessThanThreshold", 5, 300, 2, 2]
      network = ["AWS/EC2", "NetworkOut", "Sum", "LessThanThreshold", 1000000, 300, 2, 2]
      queue   = ["GpuAutostop", "QueueDepth", "Maximum", "LessThanOrEqualToThreshold", 0, 60, 10, 10]
      gpu     = ["GpuAutostop", "GPUUtilization", "Maximum", "LessThanThreshold", 5, 60, 10, 10]
    }
    error_message = "CPU < 5%, NetworkOut < 1 MB per 5 min, QueueDepth = 0 and GPU < 5%, each over idle_minutes (2 x 5 min for EC2 metrics, 10 x 1 min for the agent's)."
  }

  assert {
    condition     = alltrue([for a in aws_cloudwatch_metric_alarm.idle : a.treat_missing_data == "breaching" && a.dimensions == tomap({ InstanceId = "i-0123456789abcdef0" })])
    error_message = "Missing data must count as idle, and every alarm must watch the instance."
  }

  assert {
    condition     = aws_cloudwatch_composite_alarm.idle.alarm_rule == "ALARM(\"gpu-autostop-idle-cpu\") AND ALARM(\"gpu-autostop-idle-gpu\") AND ALARM(\"gpu-autostop-idle-network\") AND ALARM(\"gpu-autostop-idle-queue\")"
    error_message = "The composite alarm must need all four idle signals."
  }

  assert {
    condition     = aws_cloudwatch_composite_alarm.idle.alarm_actions == toset([var.stop_function_arn]) && aws_cloudwatch_composite_alarm.idle.actions_enabled
    error_message = "The composite alarm's action must invoke the stop function directly."
  }

  assert {
    condition     = alltrue([for a in aws_cloudwatch_metric_alarm.idle : length(coalesce(a.alarm_actions, [])) == 0])
    error_message = "Only the composite alarm acts; a single idle signal must not stop anything."
  }

  assert {
    condition     = aws_lambda_permission.composite_alarm.principal == "lambda.alarms.cloudwatch.amazonaws.com" && aws_lambda_permission.composite_alarm.source_arn == aws_cloudwatch_composite_alarm.idle.arn && aws_lambda_permission.composite_alarm.function_name == "gpu-autostop-stop" && aws_lambda_permission.composite_alarm.source_account == "123456789012"
    error_message = "The stop function must let exactly this alarm invoke it (CloudWatch alarms' Lambda principal)."
  }
}

run "thresholds_follow_the_variables" {
  state_key = "custom"

  module {
    source = "./modules/idle_alarms"
  }

  variables {
    idle_minutes         = 7.5
    detailed_monitoring  = true
    cpu_idle_percent     = 3
    network_idle_bytes   = 2000000
    gpu_idle_percent     = 12
    queue_idle_threshold = 1
  }

  assert {
    condition = {
      for k, a in aws_cloudwatch_metric_alarm.idle : k => [a.threshold, a.period, a.evaluation_periods]
      } == {
      cpu     = [3, 60, 8]
      network = [400000, 60, 8]
      queue   = [1, 60, 8]
      gpu     = [12, 60, 8]
    }
    error_message = "Detailed monitoring means 1-minute EC2 periods (NetworkOut threshold scaled to 1 minute); 7.5 idle minutes round up to 8 periods."
  }
}

run "slow_agent_metrics_and_short_idle" {
  state_key = "slow"

  module {
    source = "./modules/idle_alarms"
  }

  variables {
    idle_minutes    = 0.5
    metrics_seconds = 120
  }

  assert {
    condition     = { for k, a in aws_cloudwatch_metric_alarm.idle : k => [a.period, a.evaluation_periods] } == { cpu = [300, 1], network = [300, 1], queue = [300, 1], gpu = [300, 1] }
    error_message = "An agent publishing less often than every minute needs 5-minute periods; at least one period always."
  }
}
