# modules/dashboard: every part's metrics on one page, and the cost text (budgets, the cap or its
# absence, how to reset it, where the usage ledger is).

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name                 = "gpu-autostop"
  region               = "us-east-1"
  budgets              = { normal = { name = "gpu-autostop-normal", limit = 50 }, peak = { name = "gpu-autostop-peak", limit = 150 } }
  instance_id          = "i-0123456789abcdef0"
  metrics_namespace    = "GpuAutostop"
  service_name         = "gpu-autostop"
  function_names       = { start = "gpu-autostop-start", status = "gpu-autostop-status", stop = "gpu-autostop-stop" }
  dlq_name             = "gpu-autostop-dlq"
  idle_alarm_arns      = { composite = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:gpu-autostop-idle" }
  composite_alarm_name = "gpu-autostop-idle"
  cap_parameter        = "/gpu-autostop/cap"
  ledger_parameter     = "/gpu-autostop/ledger"
}

run "defaults" {
  module {
    source = "./modules/dashboard"
  }

  assert {
    condition     = length(aws_cloudwatch_dashboard.main) == 1 && output.dashboard_name == "gpu-autostop"
    error_message = "The dashboard is created by default."
  }

  assert {
    condition = toset(flatten([for w in jsondecode(aws_cloudwatch_dashboard.main[0].dashboard_body).widgets : [for m in try(w.properties.metrics, []) : m[1]]])) == toset([
      "CPUUtilization", "QueueDepth", "ActiveSessions", "GPUUtilization", "NetworkOut",
      "Starts", "Stops", "StopsDeclined", "StartToReadySeconds", "Errors", "ApproximateNumberOfMessagesVisible",
      "HardCapTrips", "HardCapStops", "CostReports",
    ])
    error_message = "The dashboard must show instance state, queue, GPU, CPU, network, starts/stops, declined stops, errors, DLQ depth, hard-cap trips and stops, and cost reports."
  }

  assert {
    condition     = strcontains(aws_cloudwatch_dashboard.main[0].dashboard_body, "No hard cap") && strcontains(aws_cloudwatch_dashboard.main[0].dashboard_body, "aws ssm get-parameter --name /gpu-autostop/ledger") && strcontains(aws_cloudwatch_dashboard.main[0].dashboard_body, "`gpu-autostop-normal` $50.00, `gpu-autostop-peak` $150.00")
    error_message = "The dashboard's cost text must name the budgets, say there is no hard cap and where the usage ledger is."
  }
}

run "hard_cap" {
  state_key = "hard_cap"

  module {
    source = "./modules/dashboard"
  }

  variables {
    hard_cap_usd = 80
    budgets      = { normal = { name = "gpu-autostop-normal", limit = 50 }, peak = { name = "gpu-autostop-peak", limit = 150 }, hard_cap = { name = "gpu-autostop-hard-cap", limit = 80 } }
  }

  assert {
    condition     = strcontains(aws_cloudwatch_dashboard.main[0].dashboard_body, "make reset-cap CAP_PARAMETER=/gpu-autostop/cap") && strcontains(aws_cloudwatch_dashboard.main[0].dashboard_body, "$80.00")
    error_message = "The dashboard's cost text must show the cap and how to reset it."
  }
}

run "no_dashboard" {
  state_key = "none"

  module {
    source = "./modules/dashboard"
  }

  variables {
    create_dashboard = false
  }

  assert {
    condition     = length(aws_cloudwatch_dashboard.main) == 0 && output.dashboard_url == null && output.dashboard_name == null
    error_message = "create_dashboard = false must create no dashboard."
  }
}
