# Every validation rejects a bad value, and the boundary values pass. Each rejects_* run sets one
# bad value for each of its variables and expects exactly those variables to fail; a variable with
# several rules appears in several runs, once per rule. The bad values of a variable whose rules read
# another variable get runs of their own (Terraform skips a variable's rules when a variable they
# read is itself invalid). Plan only, with the mock provider: nothing is created.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  functions_zip_path = "tests/fixtures/placeholder-artifact.txt"
  agent_archive_path = "tests/fixtures/placeholder-artifact.txt"
  allowed_cidrs      = ["203.0.113.7/32"]
  alert_emails       = ["owner@example.com"]
}

run "rejects_bad_values_1" {
  command = plan

  variables {
    name                         = "GPU-Autostop"
    region                       = "useast1"
    project_tag                  = ""
    instance_type                = "g4dn"
    ami_id                       = "ubuntu-24.04"
    ami_ssm_parameter            = "aws/service/x"
    root_volume_size_gb          = 10
    key_name                     = ""
    ssh_allowed_cidrs            = ["203.0.113.7"]
    market                       = "reserved"
    spot_max_price               = "$0.30"
    comfyui_port                 = 80
    comfyui_ref                  = "v0.8.0; rm -rf /"
    torch_index_url              = "http://download.pytorch.org/whl/cu128"
    torch_versions               = { torch = ">=2.8", torchvision = "0.23.0", torchaudio = "2.8.0+cu128" }
    install_timeout_minutes      = 5
    models_s3_uri                = "https://example.com/models"
    subnet_id                    = "my-subnet"
    vpc_cidr                     = "10.42.0.0/28"
    availability_zone            = "us-east-1"
    idle_minutes                 = 0
    boot_grace_minutes           = -1
    heartbeat_seconds            = 1
    cpu_idle_percent             = 0
    network_idle_bytes           = 0
    gpu_idle_percent             = 0
    metrics_namespace            = "AWS/EC2"
    hourly_price_usd             = -0.5
    recheck_minutes              = 0
    lambda_memory_mb             = 64
    reserved_concurrency         = { start = 0, status = 4, stop = 2 }
    log_retention_days           = 10
    kms_key_deletion_window_days = 3
    alert_emails                 = ["owner.example.com"]
    budget_normal_usd            = 0
    n8n_role_trusted_arns        = ["123456789012"]
    hard_cap_usd                 = 0
    fixed_monthly_usd            = -1
    cost_report_schedule         = "rate(5 minutes)"
  }

  expect_failures = [
    var.name,
    var.region,
    var.project_tag,
    var.instance_type,
    var.ami_id,
    var.ami_ssm_parameter,
    var.root_volume_size_gb,
    var.key_name,
    var.ssh_allowed_cidrs,
    var.market,
    var.spot_max_price,
    var.comfyui_port,
    var.comfyui_ref,
    var.torch_index_url,
    var.torch_versions,
    var.install_timeout_minutes,
    var.models_s3_uri,
    var.subnet_id,
    var.vpc_cidr,
    var.availability_zone,
    var.idle_minutes,
    var.boot_grace_minutes,
    var.heartbeat_seconds,
    var.cpu_idle_percent,
    var.network_idle_bytes,
    var.gpu_idle_percent,
    var.metrics_namespace,
    var.hourly_price_usd,
    var.recheck_minutes,
    var.lambda_memory_mb,
    var.reserved_concurrency,
    var.log_retention_days,
    var.kms_key_deletion_window_days,
    var.alert_emails,
    var.budget_normal_usd,
    var.n8n_role_trusted_arns,
    var.hard_cap_usd,
    var.fixed_monthly_usd,
    var.cost_report_schedule,
  ]
}

run "rejects_bad_values_2" {
  command = plan

  variables {
    name                = "a-name-that-is-far-too-long-for-iam"
    root_volume_size_gb = 100.5
    ssh_allowed_cidrs   = ["0.0.0.0/0"]
    comfyui_port        = 70000
    vpc_cidr            = "10.42.0.0"
    idle_minutes        = 0.01
    cpu_idle_percent    = 101
    metrics_namespace   = ""
    recheck_minutes     = 2.5
    alert_emails        = ["u0@example.com", "u1@example.com", "u2@example.com", "u3@example.com", "u4@example.com", "u5@example.com", "u6@example.com", "u7@example.com", "u8@example.com", "u9@example.com", "u10@example.com"]
    hard_cap_usd        = 2000000
    fixed_monthly_usd   = 200000
    # A report every minute of 07:00 would make 120 Cost Explorer requests an hour.
    cost_report_schedule = "cron(* 7 ? * MON *)"
  }

  expect_failures = [
    var.name,
    var.root_volume_size_gb,
    var.ssh_allowed_cidrs,
    var.comfyui_port,
    var.vpc_cidr,
    var.idle_minutes,
    var.cpu_idle_percent,
    var.metrics_namespace,
    var.recheck_minutes,
    var.alert_emails,
    var.hard_cap_usd,
    var.fixed_monthly_usd,
    var.cost_report_schedule,
  ]
}

run "rejects_bad_values_3" {
  command = plan

  variables {
    name                 = "gpu-"
    reserved_concurrency = { start = 2, status = 4, stop = 2, budget = 0 }
    hard_cap_usd         = 0.001
    cost_report_schedule = "weekly"
  }

  expect_failures = [
    var.name,
    var.reserved_concurrency,
    var.hard_cap_usd,
    var.cost_report_schedule,
  ]
}

# More malformed or too frequent cost report schedules, one per run.
run "rejects_cost_report_schedule_five_cron_fields" {
  command = plan

  variables {
    cost_report_schedule = "cron(0 7 * * MON)"
  }

  expect_failures = [var.cost_report_schedule]
}

run "rejects_cost_report_schedule_every_few_hours" {
  command = plan

  variables {
    cost_report_schedule = "cron(0 */6 ? * * *)"
  }

  expect_failures = [var.cost_report_schedule]
}

run "rejects_cost_report_schedule_hourly_rate" {
  command = plan

  variables {
    cost_report_schedule = "rate(12 hours)"
  }

  expect_failures = [var.cost_report_schedule]
}

run "rejects_cost_report_schedule_plural_one" {
  command = plan

  variables {
    cost_report_schedule = "rate(1 days)"
  }

  expect_failures = [var.cost_report_schedule]
}

# EventBridge refuses a cron with both or neither of day-of-month and day-of-week set to ?, and
# out-of-range minutes or hours, only when it creates the rule ("Cron expressions reference").
run "rejects_cost_report_schedule_day_of_month_and_week" {
  command = plan

  variables {
    cost_report_schedule = "cron(0 7 * * MON *)"
  }

  expect_failures = [var.cost_report_schedule]
}

run "rejects_cost_report_schedule_both_any" {
  command = plan

  variables {
    cost_report_schedule = "cron(0 7 ? * ? *)"
  }

  expect_failures = [var.cost_report_schedule]
}

run "rejects_cost_report_schedule_every_day_both_stars" {
  command = plan

  variables {
    cost_report_schedule = "cron(0 7 * * * *)"
  }

  expect_failures = [var.cost_report_schedule]
}

run "rejects_cost_report_schedule_day_of_month_and_week_values" {
  command = plan

  variables {
    cost_report_schedule = "cron(0 7 1 * MON *)"
  }

  expect_failures = [var.cost_report_schedule]
}

run "rejects_cost_report_schedule_minute_out_of_range" {
  command = plan

  variables {
    cost_report_schedule = "cron(60 7 ? * MON *)"
  }

  expect_failures = [var.cost_report_schedule]
}

run "rejects_cost_report_schedule_hour_out_of_range" {
  command = plan

  variables {
    cost_report_schedule = "cron(0 7,24 ? * MON *)"
  }

  expect_failures = [var.cost_report_schedule]
}

run "accepts_cost_report_schedule_first_of_month" {
  command = plan

  variables {
    cost_report_schedule = "cron(30 6 1 * ? *)"
  }
}

run "accepts_cost_report_schedule_every_day" {
  command = plan

  variables {
    cost_report_schedule = "cron(59 23 * * ? *)"
  }
}

run "accepts_cost_report_schedule_weekday_range" {
  command = plan

  variables {
    cost_report_schedule = "cron(0 8 ? * MON-FRI *)"
  }
}

# AWS does not let a spot instance change type ("Behavior of Spot Instance interruptions").
run "rejects_fallback_types_with_spot" {
  command = plan

  variables {
    market                  = "spot"
    fallback_instance_types = ["g5.xlarge"]
  }

  expect_failures = [var.fallback_instance_types]
}

run "rejects_ebs_key_alias" {
  command = plan

  variables {
    ebs_kms_key_arn = "alias/aws/ebs"
  }

  expect_failures = [var.ebs_kms_key_arn]
}

run "rejects_fallback_malformed" {
  command = plan

  variables {
    fallback_instance_types = ["g5 xlarge"]
  }

  expect_failures = [
    var.fallback_instance_types,
  ]
}

run "rejects_fallback_duplicates" {
  command = plan

  variables {
    fallback_instance_types = ["g5.xlarge", "g5.xlarge"]
  }

  expect_failures = [
    var.fallback_instance_types,
  ]
}

run "rejects_budget_peak_negative" {
  command = plan

  variables {
    budget_peak_usd = -1
  }

  expect_failures = [
    var.budget_peak_usd,
  ]
}

run "rejects_allowed_cidr_malformed" {
  command = plan

  variables {
    allowed_cidrs = ["203.0.113.300/32"]
  }

  expect_failures = [
    var.allowed_cidrs,
  ]
}

run "rejects_allowed_cidrs_public_ipv4" {
  command = plan

  variables {
    allowed_cidrs = ["0.0.0.0/0"]
  }

  expect_failures = [
    var.allowed_cidrs,
  ]
}

run "rejects_allowed_cidrs_public_ipv6" {
  command = plan

  variables {
    allowed_cidrs = ["::/0"]
  }

  expect_failures = [
    var.allowed_cidrs,
  ]
}

run "rejects_fallback_repeats_instance_type" {
  command = plan

  variables {
  }

  expect_failures = [
  ]
}

run "rejects_idle_minutes_over_a_day" {
  command = plan

  variables {
    idle_minutes            = 1441
    agent_self_stop_minutes = 1440
  }

  expect_failures = [
    var.idle_minutes,
  ]
}

run "rejects_self_stop_not_after_idle" {
  command = plan

  variables {
    agent_self_stop_minutes = 10
  }

  expect_failures = [
    var.agent_self_stop_minutes,
  ]
}

run "rejects_budget_peak_below_normal" {
  command = plan

  variables {
  }

  expect_failures = [
  ]
}

run "rejects_access_key_without_user" {
  command = plan

  variables {
    n8n_create_access_key = true
  }

  expect_failures = [
    var.n8n_create_access_key,
  ]
}

run "accepts_public_comfyui_when_explicitly_allowed" {
  command = plan

  variables {
    allow_public_comfyui = true
  }
}

run "accepts_fractional_idle_minutes_and_ipv6_cidrs" {
  command = plan

  variables {
    idle_minutes = 0.5
  }
}

run "accepts_cost_boundaries" {
  command = plan

  variables {
    hard_cap_usd         = 1000000
    fixed_monthly_usd    = 100000
    cost_report_schedule = "cron(0 7,19 ? * * *)"
  }
}

run "accepts_equal_budgets" {
  command = plan

  variables {
    budget_normal_usd = 20
  }
}

run "accepts_every_option_set" {
  command = plan

  variables {
    name                      = "comfy-gpu"
    instance_type             = "g5.xlarge"
    ami_id                    = "ami-0123456789abcdef0"
    key_name                  = "laptop"
    ssh_allowed_cidrs         = ["203.0.113.7/32"]
    market                    = "spot"
    spot_max_price            = "0.30"
    ebs_kms_key_arn           = "arn:aws:kms:us-east-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
    budgets_include_credits   = true
    models_s3_uri             = "s3://my-models/comfyui"
    subnet_id                 = "subnet-0123456789abcdef0"
    hourly_price_usd          = 0.25
    reserved_concurrency      = { start = -1, status = -1, stop = -1, cost_report = 1, budget = 1 }
    n8n_create_user           = true
    n8n_create_access_key     = true
    n8n_role_trusted_arns     = ["arn:aws:iam::123456789012:role/n8n"]
    alert_emails              = ["u0@example.com", "u1@example.com", "u2@example.com", "u3@example.com", "u4@example.com", "u5@example.com", "u6@example.com", "u7@example.com", "u8@example.com", "u9@example.com"]
    hard_cap_usd              = 0.01
    fixed_monthly_usd         = 0
    cost_report_schedule      = "rate(1 day)"
    enable_cost_report        = false
    budget_filter_project_tag = true
  }
}

# The defaults deploy, but `terraform plan` warns (check blocks; in tests a failed check counts as
# a failure, hence expect_failures) that nothing can reach ComfyUI and nobody gets the alerts.
run "warns_without_allowed_cidrs_or_alert_emails" {
  command = plan

  variables {
    allowed_cidrs = []
    alert_emails  = []
  }

  expect_failures = [
    check.reachability,
    check.alert_recipients,
  ]
}
