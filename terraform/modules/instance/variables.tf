# The root module validates the user-facing values (see ../../variables.tf); the checks here guard
# the module's own assumptions.

variable "name" {
  description = "Prefix of resource names."
  type        = string
}

variable "region" {
  description = "AWS region (written into the instance's settings and unit files)."
  type        = string
}

variable "account_id" {
  description = "AWS account id (for ARNs)."
  type        = string
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov), for ARNs."
  type        = string
  default     = "aws"
}

variable "instance_type" {
  description = "EC2 instance type. Ignored after creation: the start function applies a changed type while the instance is stopped."
  type        = string
}

variable "fallback_instance_types" {
  description = "Instance types the start function may switch to (on-demand only); each must be offered in the instance's zone."
  type        = list(string)
  default     = []

  validation {
    condition     = var.market != "spot" || length(var.fallback_instance_types) == 0
    error_message = "A spot instance cannot change type, so it takes no fallback_instance_types."
  }
}

variable "ami_id" {
  description = "AMI id, or null to read ami_ssm_parameter."
  type        = string
  default     = null
}

variable "ami_ssm_parameter" {
  description = "Public SSM parameter holding the default AMI id."
  type        = string
}

variable "root_volume_size_gb" {
  description = "Size of the encrypted gp3 root volume in GiB."
  type        = number
}

variable "ebs_kms_key_arn" {
  description = "ARN of a customer-managed KMS key for the root volume of a new instance, or null for the AWS-managed aws/ebs key. Ignored for an existing instance (a new key would replace it and its disk)."
  type        = string
  default     = null
}

variable "key_name" {
  description = "Existing EC2 key pair name, or null."
  type        = string
  default     = null
}

variable "ssh_allowed_cidrs" {
  description = "CIDR blocks allowed to reach port 22 (only when key_name is set)."
  type        = list(string)
  default     = []
}

variable "market" {
  description = "\"on-demand\" or \"spot\"."
  type        = string

  validation {
    condition     = contains(["on-demand", "spot"], var.market)
    error_message = "market must be \"on-demand\" or \"spot\"."
  }
}

variable "spot_max_price" {
  description = "Spot price cap in USD per hour (string), or null for the on-demand price."
  type        = string
  default     = null
}

variable "allowed_cidrs" {
  description = "CIDR blocks (IPv4 or IPv6) allowed to reach ComfyUI."
  type        = list(string)
}

variable "comfyui_port" {
  description = "ComfyUI's TCP port."
  type        = number
}

variable "comfyui_ref" {
  description = "Git ref of ComfyUI to install."
  type        = string
}

variable "torch_index_url" {
  description = "pip index URL for PyTorch with CUDA."
  type        = string
}

variable "torch_versions" {
  description = "Exact torch, torchvision and torchaudio versions installed from torch_index_url."
  type = object({
    torch       = string
    torchvision = string
    torchaudio  = string
  })
}

variable "models_s3_uri" {
  description = "s3://bucket/prefix synced read-only into ComfyUI's models directory at boot, or null."
  type        = string
  default     = null
}

variable "subnet_id" {
  description = "Existing public subnet, or null to create a minimal VPC."
  type        = string
  default     = null
}

variable "vpc_cidr" {
  description = "CIDR of the created VPC."
  type        = string
}

variable "availability_zone" {
  description = "Zone of the created subnet, or null for the first zone offering instance_type."
  type        = string
  default     = null
}

variable "create_eip" {
  description = "Attach an Elastic IP."
  type        = bool
}

variable "enable_session_manager" {
  description = "Attach AmazonSSMManagedInstanceCore to the instance role."
  type        = bool
}

variable "detailed_monitoring" {
  description = "EC2 detailed (1-minute) monitoring."
  type        = bool
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the artifacts bucket."
  type        = string
}

variable "agent_archive_path" {
  description = "Local path of the agent archive (gzipped tar with agent/ at its top)."
  type        = string
}

variable "agent_settings" {
  description = "Environment for agent/install.sh (written to settings.env; see README.md for the contract)."
  type        = map(string)
}

variable "agent_state_parameter_arn" {
  description = "ARN of the SSM parameter the agent writes its state record to."
  type        = string
}

variable "metrics_namespace" {
  description = "The only CloudWatch namespace the instance may publish metrics to."
  type        = string
}
