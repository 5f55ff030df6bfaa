variable "name" {
  description = "Prefix of alarm names."
  type        = string
}

variable "account_id" {
  description = "AWS account id (source account of the alarm's Lambda permission)."
  type        = string
}

variable "instance_id" {
  description = "Id of the GPU instance whose metrics are watched."
  type        = string
}

variable "stop_function_arn" {
  description = "ARN of the stop function the composite alarm invokes."
  type        = string
}

variable "stop_function_name" {
  description = "Name of the stop function (for its resource policy)."
  type        = string
}

variable "metrics_namespace" {
  description = "Namespace of the agent's metrics (QueueDepth, GPUUtilization by InstanceId)."
  type        = string
}

variable "idle_minutes" {
  description = "Idle time before a stop; each alarm needs every period of at least this long to be idle."
  type        = number

  validation {
    condition     = var.idle_minutes > 0 && var.idle_minutes <= 1440
    error_message = "idle_minutes must be greater than 0 and at most 1440."
  }
}

variable "metrics_seconds" {
  description = "How often the agent publishes its metrics; the agent alarms use 1-minute periods up to 60 s, else 5-minute periods."
  type        = number
  default     = 60
}

variable "detailed_monitoring" {
  description = "EC2 detailed monitoring is on: the CPU and NetworkOut alarms use 1-minute instead of 5-minute periods."
  type        = bool
  default     = false
}

variable "cpu_idle_percent" {
  description = "CPUUtilization (per-period maximum) below which the instance is idle."
  type        = number
}

variable "network_idle_bytes" {
  description = "NetworkOut bytes per 5 minutes below which the instance is idle (scaled for 1-minute periods)."
  type        = number
}

variable "gpu_idle_percent" {
  description = "GPUUtilization (per-period maximum, from the agent) below which the GPU is idle."
  type        = number
}

variable "queue_idle_threshold" {
  description = "QueueDepth (per-period maximum) at or below which ComfyUI's queue is idle."
  type        = number
  default     = 0
}
