output "instance_id" {
  description = "Id of the GPU instance."
  value       = aws_instance.gpu.id
}

output "instance_arn" {
  description = "ARN of the GPU instance (the functions' EC2 permissions are scoped to it)."
  value       = aws_instance.gpu.arn
}

output "public_ip" {
  description = "Public IP now, or null while the instance has none (stopped): the Elastic IP when create_eip is true, else the address of the current run (changes at each start; the status function reports the live one)."
  value       = local.public_ip
}

output "comfyui_url" {
  description = "ComfyUI URL at public_ip, or null without one (stable only with an Elastic IP)."
  value       = local.public_ip == null ? null : "http://${local.public_ip}:${var.comfyui_port}"
}

output "security_group_id" {
  description = "Security group of the instance."
  value       = aws_security_group.gpu.id
}

output "subnet_id" {
  description = "Subnet the instance runs in."
  value       = local.subnet_id
}

output "vpc_id" {
  description = "VPC the instance runs in."
  value       = local.vpc_id
}

output "ami_id" {
  description = "AMI the instance was planned with."
  value       = local.ami_id
}

output "role_name" {
  description = "Name of the instance role."
  value       = aws_iam_role.instance.name
}

output "artifacts_bucket" {
  description = "Private bucket holding the boot artifacts (bootstrap.sh, settings.env, agent.tar.gz under instance/)."
  value       = aws_s3_bucket.artifacts.id
}

output "settings_env" {
  description = "The settings.env the instance applies at boot (no secrets)."
  value       = local.settings_env
}

output "iam_policies" {
  description = "Identity policy documents this module attaches (JSON), for review and tests."
  value       = { instance = jsonencode(local.instance_policy) }
}
