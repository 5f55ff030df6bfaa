# Test helper for tests/apply/moto.tftest.hcl: reads the applied stack back through the AWS API
# (the moto server), so the assertions check what the emulator holds, not what Terraform planned.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "instance_id" {
  type = string
}

variable "function_names" {
  type = map(string)
}

variable "agent_state_parameter" {
  type = string
}

variable "lease_parameter" {
  type = string
}

variable "ledger_parameter" {
  type = string
}

variable "cap_parameter" {
  type = string
}

variable "artifacts_bucket" {
  type = string
}

data "aws_lambda_function" "this" {
  for_each      = var.function_names
  function_name = each.value
}

data "aws_instance" "gpu" {
  instance_id = var.instance_id
}

data "aws_ssm_parameter" "agent_state" {
  name = var.agent_state_parameter
}

data "aws_ssm_parameter" "lease" {
  name = var.lease_parameter
}

data "aws_ssm_parameter" "ledger" {
  name = var.ledger_parameter
}

data "aws_ssm_parameter" "cap" {
  name = var.cap_parameter
}

data "aws_s3_object" "settings" {
  bucket = var.artifacts_bucket
  key    = "instance/settings.env"
}

output "functions" {
  value = {
    for k, f in data.aws_lambda_function.this : k => {
      handler     = f.handler
      runtime     = f.runtime
      timeout     = f.timeout
      role        = f.role
      environment = f.environment[0].variables
    }
  }
}

output "instance" {
  value = {
    http_tokens   = data.aws_instance.gpu.metadata_options[0].http_tokens
    ebs_optimized = data.aws_instance.gpu.ebs_optimized
    root_volumes  = [for d in data.aws_instance.gpu.root_block_device : { encrypted = d.encrypted, type = d.volume_type, size = d.volume_size }]
    profile       = data.aws_instance.gpu.iam_instance_profile
    tags          = data.aws_instance.gpu.tags
  }
}

output "parameters" {
  value = {
    agent_state = data.aws_ssm_parameter.agent_state.insecure_value
    lease       = data.aws_ssm_parameter.lease.insecure_value
    ledger      = data.aws_ssm_parameter.ledger.insecure_value
    cap         = data.aws_ssm_parameter.cap.insecure_value
  }
}

output "settings_env" {
  value = data.aws_s3_object.settings.body
}
