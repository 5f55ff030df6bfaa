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
  description = "Names of the functions by role: start, status, stop (start and status are part of the n8n contract), cost_report (the weekly cost report) and budget (the hard cap's AWS Budgets handler)."
  type = object({
    start       = string
    status      = string
    stop        = string
    cost_report = string
    budget      = string
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

variable "ebs_kms_key_arn" {
  description = "Customer-managed KMS key of the instance's root volume, or null (AWS-managed aws/ebs): with a key, the start role may use it as EC2 needs to start the instance."
  type        = string
  default     = null
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

variable "ledger_parameter" {
  description = "Name of the SSM parameter holding the usage ledger (LEDGER_PARAMETER; created here with {})."
  type        = string

  validation {
    condition     = startswith(var.ledger_parameter, "/")
    error_message = "ledger_parameter must be a hierarchical name starting with /."
  }
}

variable "cap_parameter" {
  description = "Name of the SSM parameter holding the hard cap's flag (CAP_PARAMETER; created here with {\"tripped\":false})."
  type        = string

  validation {
    condition     = startswith(var.cap_parameter, "/")
    error_message = "cap_parameter must be a hierarchical name starting with /."
  }
}

variable "stop_intent_parameter" {
  description = "Name of the SSM parameter where the stop function notes that it is about to stop (STOP_INTENT_PARAMETER; the start function reads it)."
  type        = string

  validation {
    condition     = startswith(var.stop_intent_parameter, "/")
    error_message = "stop_intent_parameter must be a hierarchical name starting with /."
  }
}

variable "silent_note_parameter" {
  description = "Name of the SSM parameter where the stop function notes which boot it emailed about a silent agent (SILENT_NOTE_PARAMETER; one email per boot)."
  type        = string

  validation {
    condition     = startswith(var.silent_note_parameter, "/")
    error_message = "silent_note_parameter must be a hierarchical name starting with /."
  }
}

variable "install_timeout_minutes" {
  description = "INSTALL_TIMEOUT_MINUTES: longest a first-boot install may report \"installing\" before the stop function stops the instance."
  type        = number
  default     = 45

  validation {
    condition     = var.install_timeout_minutes >= 10 && var.install_timeout_minutes <= 240 && floor(var.install_timeout_minutes) == var.install_timeout_minutes
    error_message = "install_timeout_minutes must be a whole number between 10 and 240."
  }
}

variable "silent_stop_minutes" {
  description = "SILENT_STOP_MINUTES: agent silent and no CloudWatch data this long without a sign of life, the stop function stops anyway. Must exceed settings.idle_minutes + 10."
  type        = number
  default     = 90

  validation {
    condition     = var.silent_stop_minutes > var.settings.idle_minutes + 10 && var.silent_stop_minutes <= 1440
    error_message = "silent_stop_minutes must be greater than idle_minutes + 10 and at most 1440."
  }
}

variable "hard_cap_usd" {
  description = "The hard spend cap on the month-to-date estimate (HARD_CAP_USD), or null for none."
  type        = number
  default     = null

  validation {
    condition     = var.hard_cap_usd == null || try(var.hard_cap_usd >= 0.01 && var.hard_cap_usd <= 1000000, false)
    error_message = "hard_cap_usd must be null or between 0.01 and 1000000 (what the functions accept)."
  }
}

variable "fixed_monthly_usd" {
  description = "Monthly costs that do not depend on running time, for the cap's estimate (FIXED_MONTHLY_USD), or null for the functions' pricing table."
  type        = number
  default     = null

  validation {
    condition     = var.fixed_monthly_usd == null || try(var.fixed_monthly_usd >= 0 && var.fixed_monthly_usd <= 100000, false)
    error_message = "fixed_monthly_usd must be null or between 0 and 100000 (what the functions accept)."
  }
}

variable "budgets_usd" {
  description = "Monthly budgets in USD the weekly report compares spend with (BUDGETS_USD)."
  type        = list(number)
  default     = [50, 150]

  validation {
    condition     = length(var.budgets_usd) > 0 && alltrue([for b in var.budgets_usd : b > 0])
    error_message = "budgets_usd must hold at least one amount, each greater than 0."
  }
}

variable "cost_tag" {
  description = "Cost-allocation tag ({ key, value }) the weekly report filters Cost Explorer on (COST_TAG_KEY, COST_TAG_VALUE), or null for the EC2 services of the whole account."
  type = object({
    key   = string
    value = string
  })
  default = null
}

variable "cost_report_enabled" {
  description = "Send the cost report on cost_report_schedule (false: no schedule; the function can still be invoked by hand)."
  type        = bool
  default     = true
}

variable "cost_report_schedule" {
  description = "EventBridge schedule expression (UTC) of the cost report."
  type        = string
  default     = "cron(0 7 ? * MON *)"

  validation {
    # At most a few times a day: each report makes two Cost Explorer requests ($0.01 each).
    # EventBridge wants ? in exactly one of day-of-month and day-of-week (see ../../variables.tf).
    condition     = can(regex("^(cron\\([0-5]?[0-9] ([01]?[0-9]|2[0-3])(,([01]?[0-9]|2[0-3]))* (\\? [^ ()]+ [^ ()?]+|[^ ()?]+ [^ ()]+ \\?) [^ ()]+\\)|rate\\((1 day|([2-9]|[1-9][0-9]+) days)\\))$", var.cost_report_schedule))
    error_message = "cost_report_schedule must be an EventBridge cron(minute hour day-of-month month day-of-week year) with a single minute, fixed hours and ? in exactly one of day-of-month and day-of-week, or rate(N days): at most a few reports a day (each makes two $0.01 Cost Explorer requests)."
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
  description = "Reserved concurrency per function (-1: unreserved, the default for every function)."
  type = object({
    start       = optional(number, -1)
    status      = optional(number, -1)
    stop        = optional(number, -1)
    cost_report = optional(number, -1)
    budget      = optional(number, -1)
  })
  default = {}
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
  description = "The stop rule's settings, passed to every function's environment (docs/operations.md#the-functions-environment). hourly_price_usd may be null."
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
