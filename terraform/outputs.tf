output "instance_id" {
  description = "Id of the GPU instance."
  value       = module.instance.instance_id
}

output "instance_type" {
  description = "Declared instance type (the start function applies it while the instance is stopped)."
  value       = var.instance_type
}

output "comfyui_url" {
  description = "ComfyUI URL now. Without an Elastic IP the address changes at every start: ask the status function (comfyui_url in its answer) for the live one."
  value       = module.instance.comfyui_url
}

output "public_ip" {
  description = "Public IP now (see comfyui_url)."
  value       = module.instance.public_ip
}

output "region" {
  description = "AWS region of the stack."
  value       = var.region
}

output "function_names" {
  description = "Function names by role: start, status, stop, cost_report (the weekly report; scheduled with enable_cost_report) and budget (the hard cap's; invoked only with hard_cap_usd)."
  value       = module.control_plane.function_names
}

output "function_arns" {
  description = "Function ARNs by role (as function_names)."
  value       = module.control_plane.function_arns
}

output "cost_report_function" {
  description = "Name of the weekly cost report function. Send a report now: aws lambda invoke --function-name <name> --cli-binary-format raw-in-base64-out --payload '{}' /dev/stdout ('{\"send\": false}' only builds it)."
  value       = module.control_plane.function_names["cost_report"]
}

output "alert_topic_arn" {
  description = "ARN of the encrypted alerts topic (stop notices, errors, budgets)."
  value       = module.alerts.topic_arn
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue for failed asynchronous invocations."
  value       = module.control_plane.dlq_url
}

output "agent_state_parameter" {
  description = "SSM parameter holding the agent's state record."
  value       = module.control_plane.agent_state_parameter_name
}

output "lease_parameter" {
  description = "SSM parameter where start records its last request."
  value       = module.control_plane.lease_parameter_name
}

output "ledger_parameter" {
  description = "SSM parameter holding the usage ledger (running hours, starts, images this month)."
  value       = module.control_plane.ledger_parameter_name
}

output "cap_parameter" {
  description = "SSM parameter holding the hard cap's flag. Status: make cap-status CAP_PARAMETER=<this>; reset: make reset-cap CAP_PARAMETER=<this> [EXTRA_USD=20]."
  value       = module.control_plane.cap_parameter_name
}

output "cap_reset_command" {
  description = "The command that resets a tripped hard cap (run it in the repository root with AWS credentials for this account; add EXTRA_USD=20 to allow $20 more until the month ends)."
  value       = "AWS_DEFAULT_REGION=${var.region} make reset-cap CAP_PARAMETER=${module.control_plane.cap_parameter_name}"
}

output "hard_cap_topic_arn" {
  description = "SNS topic the hard cap's budget publishes to (the budget function is its subscriber), or null without hard_cap_usd."
  value       = module.cost_guard.hard_cap_topic_arn
}

output "kms_key_arn" {
  description = "ARN of the project's KMS key."
  value       = aws_kms_key.main.arn
}

output "idle_alarm_name" {
  description = "Name of the composite idle alarm that invokes the stop function."
  value       = module.idle_alarms.composite_alarm_name
}

output "budget_names" {
  description = "Names of the monthly budgets."
  value       = module.cost_guard.budget_names
}

output "dashboard_url" {
  description = "Console URL of the CloudWatch dashboard, or null."
  value       = module.dashboard.dashboard_url
}

output "artifacts_bucket" {
  description = "Private bucket the instance bootstraps from."
  value       = module.instance.artifacts_bucket
}

output "n8n" {
  description = "Everything an n8n workflow needs: region, function names and ARNs, ComfyUI URL and port, and the credentials' IAM identities (the secret key, if created, is in n8n_secret_access_key)."
  value = {
    region              = var.region
    start_function      = module.control_plane.function_names["start"]
    status_function     = module.control_plane.function_names["status"]
    start_function_arn  = module.control_plane.function_arns["start"]
    status_function_arn = module.control_plane.function_arns["status"]
    comfyui_url         = module.instance.comfyui_url
    comfyui_port        = var.comfyui_port
    invoke_policy_arn   = module.n8n_access.policy_arn
    user_name           = module.n8n_access.user_name
    role_arn            = module.n8n_access.role_arn
    access_key_id       = module.n8n_access.access_key_id
  }
}

output "n8n_secret_access_key" {
  description = "Secret access key of the n8n user (only with n8n_create_access_key = true): `terraform output -raw n8n_secret_access_key`."
  value       = module.n8n_access.secret_access_key
  sensitive   = true
}
