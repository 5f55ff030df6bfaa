variable "name" {
  description = "Prefix of resource names."
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
  description = "KMS key that encrypts the hard-cap topic; its key policy must let budgets.amazonaws.com use it."
  type        = string
}

variable "alerts_topic_arn" {
  description = "ARN of the alerts topic (modules/alerts) the budgets notify; its policy must let budgets.amazonaws.com publish."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.alerts_topic_arn))
    error_message = "alerts_topic_arn must be an SNS topic ARN."
  }
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
