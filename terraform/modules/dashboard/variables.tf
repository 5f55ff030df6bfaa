variable "name" {
  description = "Prefix of resource names."
  type        = string
}

variable "region" {
  description = "AWS region (dashboard widgets)."
  type        = string
}

variable "create_dashboard" {
  description = "Create the CloudWatch dashboard."
  type        = bool
  default     = true
}

variable "budgets" {
  description = "The monthly budgets by key (normal, peak, hard_cap), name and limit in USD (the cost text)."
  type = map(object({
    name  = string
    limit = number
  }))
}

variable "hard_cap_usd" {
  description = "The hard spend cap (USD a month) or null (the cost text)."
  type        = number
  default     = null
}

variable "cap_parameter" {
  description = "Name of the hard cap's flag parameter (dashboard text)."
  type        = string
}

variable "ledger_parameter" {
  description = "Name of the usage ledger parameter (dashboard text)."
  type        = string
}

variable "instance_id" {
  description = "Id of the GPU instance (dashboard)."
  type        = string
}

variable "metrics_namespace" {
  description = "Namespace of the agent's and the functions' custom metrics (dashboard)."
  type        = string
}

variable "service_name" {
  description = "The `service` dimension of the functions' metrics (dashboard)."
  type        = string
}

variable "function_names" {
  description = "Function names by role (dashboard)."
  type        = map(string)
}

variable "dlq_name" {
  description = "Name of the dead-letter queue (dashboard)."
  type        = string
}

variable "idle_alarm_arns" {
  description = "ARNs of the idle alarms, shown in the dashboard's alarm status widget."
  type        = map(string)
  default     = {}
}

variable "composite_alarm_name" {
  description = "Name of the composite idle alarm (dashboard text)."
  type        = string
  default     = ""
}
