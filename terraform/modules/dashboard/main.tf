# The CloudWatch dashboard: one page over every part (idle signals, instance, agent, functions,
# dead-letter queue, hard cap, budgets). Optional (create_dashboard): $3 a month beyond the three
# always-free dashboards.

locals {
  service_dims = ["service", var.service_name]

  dashboard_widgets = [
    {
      type = "text", x = 0, y = 0, width = 24, height = 2
      properties = {
        markdown = "## ${var.name}\nGPU instance `${var.instance_id}`: started on demand, stopped when idle (composite alarm `${var.composite_alarm_name}` and a scheduled re-check). Emergency stop: `make stop`."
      }
    },
    {
      type = "alarm", x = 0, y = 2, width = 24, height = 3
      properties = {
        title  = "Idle signals (ALARM = idle)"
        alarms = [for k in sort(keys(var.idle_alarm_arns)) : var.idle_alarm_arns[k]]
      }
    },
    {
      type = "metric", x = 0, y = 5, width = 12, height = 6
      properties = {
        title   = "Instance state: running when CPU datapoints arrive"
        region  = var.region
        view    = "timeSeries"
        stat    = "SampleCount"
        period  = 300
        metrics = [["AWS/EC2", "CPUUtilization", "InstanceId", var.instance_id, { label = "datapoints (0 or none = stopped)" }]]
      }
    },
    {
      type = "metric", x = 12, y = 5, width = 12, height = 6
      properties = {
        title  = "ComfyUI queue depth and sessions (agent)"
        region = var.region
        view   = "timeSeries"
        stat   = "Maximum"
        period = 60
        metrics = [
          [var.metrics_namespace, "QueueDepth", "InstanceId", var.instance_id],
          [var.metrics_namespace, "ActiveSessions", "InstanceId", var.instance_id],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 11, width = 12, height = 6
      properties = {
        title   = "GPU utilization % (agent)"
        region  = var.region
        view    = "timeSeries"
        stat    = "Maximum"
        period  = 60
        metrics = [[var.metrics_namespace, "GPUUtilization", "InstanceId", var.instance_id]]
        yAxis   = { left = { min = 0, max = 100 } }
      }
    },
    {
      type = "metric", x = 12, y = 11, width = 12, height = 6
      properties = {
        title  = "CPU % and NetworkOut"
        region = var.region
        view   = "timeSeries"
        period = 300
        metrics = [
          ["AWS/EC2", "CPUUtilization", "InstanceId", var.instance_id, { stat = "Maximum" }],
          ["AWS/EC2", "NetworkOut", "InstanceId", var.instance_id, { stat = "Sum", yAxis = "right" }],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 17, width = 12, height = 6
      properties = {
        title  = "Starts, stops, declined stops"
        region = var.region
        view   = "timeSeries"
        stat   = "Sum"
        period = 3600
        metrics = [
          concat([var.metrics_namespace, "Starts"], local.service_dims),
          concat([var.metrics_namespace, "Stops"], local.service_dims),
          concat([var.metrics_namespace, "StopsDeclined"], local.service_dims),
          concat([var.metrics_namespace, "StartToReadySeconds"], local.service_dims, [{ stat = "Average", yAxis = "right" }]),
        ]
      }
    },
    {
      type = "metric", x = 12, y = 17, width = 12, height = 6
      properties = {
        title  = "Function errors and dead-letter queue depth"
        region = var.region
        view   = "timeSeries"
        period = 300
        metrics = concat(
          [for k in sort(keys(var.function_names)) : ["AWS/Lambda", "Errors", "FunctionName", var.function_names[k], { stat = "Sum" }]],
          [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.dlq_name, { stat = "Maximum", yAxis = "right" }]],
        )
      }
    },
    {
      type = "metric", x = 0, y = 23, width = 12, height = 6
      properties = {
        title  = "Hard cap and cost reports"
        region = var.region
        view   = "timeSeries"
        stat   = "Sum"
        period = 86400
        metrics = [
          concat([var.metrics_namespace, "HardCapTrips"], local.service_dims),
          concat([var.metrics_namespace, "HardCapStops"], local.service_dims),
          concat([var.metrics_namespace, "CostReports"], local.service_dims),
        ]
      }
    },
    {
      type = "text", x = 12, y = 23, width = 12, height = 6
      properties = {
        markdown = join("\n", [
          "## Cost",
          "Budgets: ${join(", ", [for k in sort(keys(var.budgets)) : "`${var.budgets[k].name}` ${format("$%.2f", var.budgets[k].limit)}"])}.",
          var.hard_cap_usd != null ? "Hard cap: ${format("$%.2f", var.hard_cap_usd)} a month, on the project's own estimate and on the `${var.name}-hard-cap` budget. Tripped? `make cap-status CAP_PARAMETER=${var.cap_parameter}`. Reset: `make reset-cap CAP_PARAMETER=${var.cap_parameter}`." : "No hard cap (set `hard_cap_usd`).",
          "Usage ledger (running hours, starts, images): `aws ssm get-parameter --name ${var.ledger_parameter}`. The weekly cost report emails Cost Explorer's figures next to it.",
        ])
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "main" {
  count          = var.create_dashboard ? 1 : 0
  dashboard_name = var.name
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
