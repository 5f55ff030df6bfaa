variable "name" {
  description = "Prefix of resource names."
  type        = string
}

variable "function_arns" {
  description = "ARNs of the functions n8n may invoke: start and status only."
  type = object({
    start  = string
    status = string
  })
}

variable "create_user" {
  description = "Create an IAM user for n8n with the invoke-only policy."
  type        = bool
  default     = false
}

variable "create_access_key" {
  description = "Create an access key for that user (its secret is stored in the Terraform state)."
  type        = bool
  default     = false

  validation {
    condition     = !var.create_access_key || var.create_user
    error_message = "create_access_key needs create_user = true."
  }
}

variable "role_trusted_arns" {
  description = "Principals allowed to assume an n8n role carrying the policy; empty: no role."
  type        = list(string)
  default     = []
}

variable "attach_to_users" {
  description = "Existing IAM users to attach the policy to."
  type        = list(string)
  default     = []
}
