variable "name" {
  description = "Prefix of resource names."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "account_id" {
  description = "AWS account id (for ARNs)."
  type        = string
}

variable "partition" {
  description = "AWS partition, for ARNs."
  type        = string
  default     = "aws"
}

variable "function_names" {
  description = "Names of the start, status and stop functions (part of the n8n contract)."
  type = object({
    start  = string
    status = string
    stop   = string
  })
}

variable "functions_zip_path" {
  description = "Path of build/functions.zip (one package for all functions)."
  type        = string
}

variable "instance_id" {
  description = "Id of the GPU instance (INSTANCE_ID)."
  type        = string
}

variable "instance_arn" {
  description = "ARN of the GPU instance; the mutating EC2 permissions are scoped to it."
  type        = string
}

variable "instance_type" {
  description = "Declared instance type (INSTANCE_TYPE): start returns the instance to it after a capacity fallback."
  type        = string
}

variable "fallback_instance_types" {
  description = "Instance types start tries in order on a capacity shortage (FALLBACK_INSTANCE_TYPES)."
  type        = list(string)
  default     = []
}

variable "agent_state_parameter" {
  description = "Name of the SSM parameter holding the agent state record (created here with a placeholder)."
  type        = string

  validation {
    condition     = startswith(var.agent_state_parameter, "/")
    error_message = "agent_state_parameter must be a hierarchical name starting with /."
  }
}

variable "lease_parameter" {
  description = "Name of the SSM parameter where start records its last request (created here with a placeholder)."
  type        = string

  validation {
    condition     = startswith(var.lease_parameter, "/")
    error_message = "lease_parameter must be a hierarchical name starting with /."
  }
}

variable "alert_topic_arn" {
  description = "SNS topic for stop notices and error alarms (ALERT_TOPIC_ARN)."
  type        = string
}

variable "kms_key_arn" {
  description = "The project's KMS key: encrypts the dead-letter queue, the topic (publishing needs it) and, with encrypt_logs, the log groups."
  type        = string
}

variable "encrypt_logs" {
  description = "Encrypt the log groups with kms_key_arn."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention of the log groups in days."
  type        = number
  default     = 30
}

variable "tracing" {
  description = "X-Ray active tracing."
  type        = bool
  default     = false
}

variable "memory_mb" {
  description = "Memory of each function in MB."
  type        = number
  default     = 256
}

variable "reserved_concurrency" {
  description = "Reserved concurrency per function (-1: unreserved)."
  type = object({
    start  = number
    status = number
    stop   = number
  })
}

variable "recheck_minutes" {
  description = "Minutes between the scheduled re-checks sent to the stop function."
  type        = number
  default     = 5

  validation {
    condition     = var.recheck_minutes >= 1 && floor(var.recheck_minutes) == var.recheck_minutes
    error_message = "recheck_minutes must be a whole number of at least 1."
  }
}

variable "metrics_namespace" {
  description = "Namespace of the functions' Powertools metrics (POWERTOOLS_METRICS_NAMESPACE)."
  type        = string
}

variable "service_name" {
  description = "Powertools service name (POWERTOOLS_SERVICE_NAME; the `service` dimension of the functions' metrics)."
  type        = string
}

variable "settings" {
  description = "The stop rule's settings, passed to every function's environment (see DESIGN.md, Lambda contract). hourly_price_usd may be null."
  type = object({
    idle_minutes       = number
    boot_grace_minutes = number
    heartbeat_seconds  = number
    comfyui_port       = number
    hourly_price_usd   = number
    cpu_idle_percent   = number
    network_idle_bytes = number
  })
}
