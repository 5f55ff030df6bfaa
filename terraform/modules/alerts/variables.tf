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
  description = "KMS key that encrypts the alerts topic; its key policy must let cloudwatch.amazonaws.com and budgets.amazonaws.com use it."
  type        = string
}

variable "alert_emails" {
  description = "Email addresses subscribed to the topic (the budgets notify the same addresses) (at most 10: an AWS Budgets limit)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.alert_emails) <= 10
    error_message = "AWS Budgets accepts at most 10 email subscribers per notification."
  }
}
