output "policy_arn" {
  description = "ARN of the invoke-only policy."
  value       = aws_iam_policy.invoke.arn
}

output "user_name" {
  description = "Name of the n8n IAM user, or null."
  value       = var.create_user ? aws_iam_user.n8n[0].name : null
}

output "role_arn" {
  description = "ARN of the n8n role, or null."
  value       = length(var.role_trusted_arns) > 0 ? aws_iam_role.n8n[0].arn : null
}

output "access_key_id" {
  description = "Access key id of the n8n user, or null (created only with create_access_key)."
  value       = var.create_access_key ? aws_iam_access_key.n8n[0].id : null
}

output "secret_access_key" {
  description = "Secret of that access key, or null. Stored in the state."
  value       = var.create_access_key ? aws_iam_access_key.n8n[0].secret : null
  sensitive   = true
}

output "iam_policies" {
  description = "Identity policy documents this module creates (JSON), for review and tests."
  value       = { invoke = jsonencode(local.invoke_policy) }
}
