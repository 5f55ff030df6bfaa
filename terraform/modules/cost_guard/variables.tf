variable "name" {
  description = "Prefix of resource names."
  type        = string
}

variable "region" {
  description = "AWS region (dashboard widgets)."
  type        = string
}

variable "account_id" {
  description = "AWS account id (topic policy conditions)."
  type        = string
}

variable "partition" {
  description = "AWS partition, for ARNs."
  type        = string
  default     = "aws"
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the alerts topic and the hard-cap topic; its key policy must let cloudwatch.amazonaws.com and budgets.amazonaws.com use it."
  type        = string
}

variable "alert_emails" {
  description = "Email addresses subscribed to the topic and to the budget notifications (at most 10: an AWS Budgets limit)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.alert_emails) <= 10
    error_message = "AWS Budgets accepts at most 10 email subscribers per notification."
  }
}

variable "budget_normal_usd" {
  description = "Monthly budget for normal use (USD)."
  type        = number

  validation {
    condition     = var.budget_normal_usd > 0
    error_message = "budget_normal_usd must be greater than 0."
  }
}

variable "budget_peak_usd" {
  description = "Monthly budget for a peak month (USD)."
  type        = number

  validation {
    condition     = var.budget_peak_usd > 0
    error_message = "budget_peak_usd must be greater than 0."
  }
}

variable "include_credits" {
  description = "Count credits and refunds in the budgets (false: gross cost, so a budget fires on an account that lives on credits)."
  type        = bool
  default     = false
}

variable "budget_filter_tag" {
  description = "Count only costs with this cost-allocation tag ({ key, value }), or null for the whole account."
  type = object({
    key   = string
    value = string
  })
  default = null
}

variable "hard_cap_usd" {
  description = "The hard spend cap (USD a month), or null for none. With a cap: a third budget (ACTUAL > 100%) publishes to a topic of its own that invokes budget_function."
  type        = number
  default     = null

  validation {
    condition     = var.hard_cap_usd == null || try(var.hard_cap_usd > 0, false)
    error_message = "hard_cap_usd must be null or greater than 0."
  }
}

variable "budget_function" {
  description = "Name and ARN of the hard cap's budget function (required with hard_cap_usd, and only then)."
  type = object({
    name = string
    arn  = string
  })
  default = null

  validation {
    condition     = (var.budget_function != null) == (var.hard_cap_usd != null)
    error_message = "budget_function must be set exactly when hard_cap_usd is."
  }
}

variable "cap_parameter" {
  description = "Name of the hard cap's flag parameter (dashboard text)."
  type        = string
}

variable "ledger_parameter" {
  description = "Name of the usage ledger parameter (dashboard text)."
  type        = string
}

variable "create_dashboard" {
  description = "Create the CloudWatch dashboard."
  type        = bool
  default     = true
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
