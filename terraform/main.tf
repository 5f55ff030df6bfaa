# gpu-autostop: one GPU instance running ComfyUI, started on demand and stopped when idle.
# The parts and their contracts are described in docs/design.md, the Terraform side in README.md
# next to this file.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  tags = merge(var.tags, { Project = var.project_tag })

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  functions_zip_path = coalesce(var.functions_zip_path, "${path.root}/../build/functions.zip")
  agent_archive_path = coalesce(var.agent_archive_path, "${path.root}/../build/agent.tar.gz")

  # SSM parameter names are part of the contract with the agent and the functions.
  agent_state_parameter = "/${var.name}/agent-state"
  lease_parameter       = "/${var.name}/lease"
  # Cost (docs/design.md#billing-ledger-hard-cap-budgets-weekly-report): the usage ledger (start
  # and stop write it) and the hard cap's flag.
  ledger_parameter = "/${var.name}/ledger"
  cap_parameter    = "/${var.name}/cap"
  # The stop function's own notes: "about to stop" (start reads it) and "silent agent alerted".
  stop_intent_parameter = "/${var.name}/stop-intent"
  silent_note_parameter = "/${var.name}/silent-note"

  # The agent publishes QueueDepth, GPUUtilization and ActiveSessions this often; the agent idle
  # alarms evaluate 1-minute periods.
  agent_metrics_seconds = 60

  # The functions by role. start and status are n8n's; cost_report runs weekly (enable_cost_report),
  # budget on the hard cap's AWS Budgets notification (hard_cap_usd). All five are always deployed.
  function_names = {
    start       = "${var.name}-start"
    status      = "${var.name}-status"
    stop        = "${var.name}-stop"
    cost_report = "${var.name}-cost-report"
    budget      = "${var.name}-budget"
  }

  # The budgets and the weekly report filter on the Project cost-allocation tag together.
  cost_filter_tag = var.budget_filter_project_tag ? { key = "Project", value = var.project_tag } : null
}

check "reachability" {
  assert {
    condition     = length(var.allowed_cidrs) > 0
    error_message = "allowed_cidrs is empty: nothing (not even n8n) can reach ComfyUI. Add your n8n host's address, e.g. allowed_cidrs = [\"203.0.113.7/32\"]."
  }
}

check "alert_recipients" {
  assert {
    condition     = length(var.alert_emails) > 0
    error_message = "alert_emails is empty: stop notices, function errors and budget alerts go only to the SNS topic, which nobody reads. Add at least one address."
  }
}

# --------------------------------------------------------------------------------------------------
# The project's KMS key: alerts topic, dead-letter queue, log groups, instance artifacts.
# AWS-managed keys (aws/sns, aws/sqs) cannot be used here: their key policies cannot grant
# CloudWatch alarms or AWS Budgets the right to publish to an encrypted topic.
# --------------------------------------------------------------------------------------------------

locals {
  kms_key_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        # Lets IAM policies in this account grant use of the key (the functions' and the
        # instance's roles do, scoped to this key).
        Sid       = "AccountAdministration"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # CloudWatch alarms (function errors, dead-letter queue) publish to the encrypted topic.
        Sid       = "AlarmsPublishToEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
      {
        # AWS Budgets publishes to the encrypted topic. No source condition here: AWS documents
        # none for Budgets' KMS requests, and a condition the request does not carry would drop
        # every budget alert silently. The topic policy still admits this account's budgets only.
        Sid       = "BudgetsPublishToEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = "budgets.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
      },
      {
        # CloudWatch Logs encrypts the functions' log groups (only those of this project).
        Sid       = "CloudWatchLogsEncryptProjectLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action = [
          "kms:Encrypt*",
          "kms:Decrypt*",
          "kms:ReEncrypt*",
          "kms:GenerateDataKey*",
          "kms:Describe*",
        ]
        Resource = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/aws/lambda/${var.name}-*"
          }
        }
      },
    ]
  }
}

resource "aws_kms_key" "main" {
  description             = "${var.name}: alerts topic, dead-letter queue, log groups, instance artifacts"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_days
  policy                  = jsonencode(local.kms_key_policy)
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.main.key_id
}

# --------------------------------------------------------------------------------------------------
# Modules, one per concern
# --------------------------------------------------------------------------------------------------

module "instance" {
  source = "./modules/instance"

  name                    = var.name
  region                  = var.region
  account_id              = local.account_id
  partition               = local.partition
  instance_type           = var.instance_type
  fallback_instance_types = var.fallback_instance_types
  ami_id                  = var.ami_id
  ami_ssm_parameter       = var.ami_ssm_parameter
  root_volume_size_gb     = var.root_volume_size_gb
  ebs_kms_key_arn         = var.ebs_kms_key_arn
  key_name                = var.key_name
  ssh_allowed_cidrs       = var.ssh_allowed_cidrs
  market                  = var.market
  spot_max_price          = var.spot_max_price
  allowed_cidrs           = var.allowed_cidrs
  comfyui_port            = var.comfyui_port
  comfyui_ref             = var.comfyui_ref
  torch_index_url         = var.torch_index_url
  torch_versions          = var.torch_versions
  models_s3_uri           = var.models_s3_uri
  subnet_id               = var.subnet_id
  vpc_cidr                = var.vpc_cidr
  availability_zone       = var.availability_zone
  create_eip              = var.create_eip
  enable_session_manager  = var.enable_session_manager
  detailed_monitoring     = var.detailed_monitoring
  kms_key_arn             = aws_kms_key.main.arn
  agent_archive_path      = local.agent_archive_path
  # The agent's configuration (agent/README.md): agent/install.sh writes the variables it knows
  # to /etc/gpu-autostop/agent.env. Its CPU threshold (whole-machine average) keeps its own default.
  agent_settings = {
    AGENT_STATE_PARAMETER = local.agent_state_parameter
    METRICS_NAMESPACE     = var.metrics_namespace
    METRICS_SECONDS       = tostring(local.agent_metrics_seconds)
    IDLE_MINUTES          = tostring(var.idle_minutes)
    SELF_STOP_MINUTES     = tostring(var.agent_self_stop_minutes)
    BOOT_GRACE_MINUTES    = tostring(var.boot_grace_minutes)
    HEARTBEAT_SECONDS     = tostring(var.heartbeat_seconds)
    GPU_BUSY_PERCENT      = tostring(var.gpu_idle_percent)
    AWS_REGION            = var.region
    COMFYUI_URL           = "http://127.0.0.1:${var.comfyui_port}"
    # The agent's last resort for a stuck install stops it 10 minutes after the stop function would.
    INSTALL_TIMEOUT_MINUTES = tostring(var.install_timeout_minutes)
  }
  agent_state_parameter_arn = module.control_plane.agent_state_parameter_arn
  metrics_namespace         = var.metrics_namespace
}

module "control_plane" {
  source = "./modules/control_plane"

  name                    = var.name
  region                  = var.region
  account_id              = local.account_id
  partition               = local.partition
  function_names          = local.function_names
  functions_zip_path      = local.functions_zip_path
  instance_id             = module.instance.instance_id
  instance_arn            = module.instance.instance_arn
  instance_type           = var.instance_type
  fallback_instance_types = var.fallback_instance_types
  ebs_kms_key_arn         = var.ebs_kms_key_arn
  agent_state_parameter   = local.agent_state_parameter
  lease_parameter         = local.lease_parameter
  ledger_parameter        = local.ledger_parameter
  cap_parameter           = local.cap_parameter
  stop_intent_parameter   = local.stop_intent_parameter
  silent_note_parameter   = local.silent_note_parameter
  install_timeout_minutes = var.install_timeout_minutes
  silent_stop_minutes     = var.silent_stop_minutes
  hard_cap_usd            = var.hard_cap_usd
  fixed_monthly_usd       = var.fixed_monthly_usd
  budgets_usd             = [var.budget_normal_usd, var.budget_peak_usd]
  cost_tag                = local.cost_filter_tag
  cost_report_enabled     = var.enable_cost_report
  cost_report_schedule    = var.cost_report_schedule
  alert_topic_arn         = module.alerts.topic_arn
  kms_key_arn             = aws_kms_key.main.arn
  encrypt_logs            = var.encrypt_logs
  log_retention_days      = var.log_retention_days
  tracing                 = var.lambda_tracing
  memory_mb               = var.lambda_memory_mb
  reserved_concurrency    = var.reserved_concurrency
  recheck_minutes         = var.recheck_minutes
  metrics_namespace       = var.metrics_namespace
  service_name            = var.name
  settings = {
    idle_minutes       = var.idle_minutes
    boot_grace_minutes = var.boot_grace_minutes
    heartbeat_seconds  = var.heartbeat_seconds
    comfyui_port       = var.comfyui_port
    hourly_price_usd   = var.hourly_price_usd
    cpu_idle_percent   = var.cpu_idle_percent
    network_idle_bytes = var.network_idle_bytes
  }
}

module "idle_alarms" {
  source = "./modules/idle_alarms"

  name                 = var.name
  metrics_seconds      = local.agent_metrics_seconds
  account_id           = local.account_id
  instance_id          = module.instance.instance_id
  stop_function_arn    = module.control_plane.function_arns["stop"]
  stop_function_name   = module.control_plane.function_names["stop"]
  metrics_namespace    = var.metrics_namespace
  idle_minutes         = var.idle_minutes
  detailed_monitoring  = var.detailed_monitoring
  cpu_idle_percent     = var.cpu_idle_percent
  network_idle_bytes   = var.network_idle_bytes
  gpu_idle_percent     = var.gpu_idle_percent
  queue_idle_threshold = 0
}

module "alerts" {
  source = "./modules/alerts"

  name         = var.name
  account_id   = local.account_id
  kms_key_arn  = aws_kms_key.main.arn
  alert_emails = var.alert_emails
}

module "cost_guard" {
  source = "./modules/cost_guard"

  name              = var.name
  account_id        = local.account_id
  kms_key_arn       = aws_kms_key.main.arn
  alerts_topic_arn  = module.alerts.topic_arn
  alert_emails      = var.alert_emails
  budget_normal_usd = var.budget_normal_usd
  budget_peak_usd   = var.budget_peak_usd
  budget_filter_tag = local.cost_filter_tag
  include_credits   = var.budgets_include_credits
  hard_cap_usd      = var.hard_cap_usd
  budget_function   = var.hard_cap_usd == null ? null : { name = module.control_plane.function_names["budget"], arn = module.control_plane.function_arns["budget"] }
}

module "dashboard" {
  source = "./modules/dashboard"

  name                 = var.name
  region               = var.region
  create_dashboard     = var.create_dashboard
  budgets              = module.cost_guard.budgets
  hard_cap_usd         = var.hard_cap_usd
  cap_parameter        = local.cap_parameter
  ledger_parameter     = local.ledger_parameter
  instance_id          = module.instance.instance_id
  metrics_namespace    = var.metrics_namespace
  service_name         = var.name
  function_names       = local.function_names
  dlq_name             = module.control_plane.dlq_name
  idle_alarm_arns      = module.idle_alarms.alarm_arns
  composite_alarm_name = module.idle_alarms.composite_alarm_name
}

# The alerts topic and the dashboard were in modules/cost_guard until the module was split by what
# each part holds: an existing deployment keeps them (state moves, nothing is recreated; proved by
# tests/terraform/test_moved.py, which applies the old tree to moto and plans this one on its state).
moved {
  from = module.cost_guard.aws_sns_topic.alerts
  to   = module.alerts.aws_sns_topic.alerts
}

moved {
  from = module.cost_guard.aws_sns_topic_policy.alerts
  to   = module.alerts.aws_sns_topic_policy.alerts
}

moved {
  from = module.cost_guard.aws_sns_topic_subscription.email
  to   = module.alerts.aws_sns_topic_subscription.email
}

moved {
  from = module.cost_guard.aws_cloudwatch_dashboard.main
  to   = module.dashboard.aws_cloudwatch_dashboard.main
}

module "n8n_access" {
  source = "./modules/n8n_access"

  name              = var.name
  function_arns     = { start = module.control_plane.function_arns["start"], status = module.control_plane.function_arns["status"] }
  create_user       = var.n8n_create_user
  create_access_key = var.n8n_create_access_key
  role_trusted_arns = var.n8n_role_trusted_arns
  attach_to_users   = var.n8n_attach_to_users
}
