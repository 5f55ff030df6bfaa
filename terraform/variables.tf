# Every setting of the stack. terraform.tfvars.example shows each one with a comment.

# --------------------------------------------------------------------------------------------------
# Naming, region, tags
# --------------------------------------------------------------------------------------------------

variable "name" {
  description = "Prefix of every resource name. The n8n workflows call the functions \"<name>-start\" and \"<name>-status\"; change both together."
  type        = string
  default     = "gpu-autostop"

  validation {
    # Lower case because S3 bucket names are; 28 characters leave room for the longest suffix
    # in IAM role names (64-character limit).
    condition     = can(regex("^[a-z][a-z0-9-]{1,26}[a-z0-9]$", var.name))
    error_message = "name must be 3-28 characters of lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "region" {
  description = "AWS region to deploy into (pick one that offers the GPU instance type, e.g. us-east-1, us-west-2, eu-west-1)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like an AWS region name, e.g. us-east-1."
  }
}

variable "project_tag" {
  description = "Value of the Project tag on every resource (enable it as a cost-allocation tag in Billing to see the project's spend; the weekly cost report filters on it)."
  type        = string
  default     = "gpu-autostop"

  validation {
    condition     = length(var.project_tag) > 0 && length(var.project_tag) <= 256
    error_message = "project_tag must be 1-256 characters."
  }
}

variable "tags" {
  description = "Extra tags for every resource (merged under Project, which always wins)."
  type        = map(string)
  default     = {}
}

# --------------------------------------------------------------------------------------------------
# GPU instance
# --------------------------------------------------------------------------------------------------

variable "instance_type" {
  description = "EC2 instance type of the GPU instance. g4dn.xlarge (1x T4, 16 GB VRAM) costs about $0.526/h on demand in us-east-1. Changing it later takes effect at the next start (the start function applies it while the instance is stopped), so a deploy never starts the instance."
  type        = string
  default     = "g4dn.xlarge"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must look like an EC2 instance type, e.g. g4dn.xlarge."
  }
}

variable "fallback_instance_types" {
  description = "Instance types the start function tries, in order, when AWS has no capacity for instance_type (on-demand only; a spot instance cannot change type). Example: [\"g5.xlarge\", \"g6.xlarge\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for t in var.fallback_instance_types : can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", t))])
    error_message = "Each fallback_instance_types entry must look like an EC2 instance type, e.g. g5.xlarge."
  }

  validation {
    condition     = !contains(var.fallback_instance_types, var.instance_type) && length(distinct(var.fallback_instance_types)) == length(var.fallback_instance_types)
    error_message = "fallback_instance_types must not repeat a type or contain instance_type itself."
  }

  validation {
    # "While a Spot Instance is stopped, you can modify some of its instance attributes, but not the
    # instance type." (EC2 user guide, "Behavior of Spot Instance interruptions")
    condition     = var.market != "spot" || length(var.fallback_instance_types) == 0
    error_message = "fallback_instance_types must be empty with market = \"spot\": AWS does not let a stopped spot instance change its instance type, so the start function could never switch to a fallback."
  }
}

variable "ami_id" {
  description = "AMI of the GPU instance. null: the current AWS Deep Learning Base OSS Nvidia Driver GPU AMI, read from the public SSM parameter in ami_ssm_parameter. The AMI must ship the NVIDIA driver, Python 3.11+ and the AWS CLI v2. A newer AMI never replaces a running instance (ami is ignored after creation; use `terraform apply -replace=module.instance.aws_instance.gpu` to move on)."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must be null or an AMI id such as ami-0123456789abcdef0."
  }
}

variable "ami_ssm_parameter" {
  description = "Public SSM parameter that holds the default AMI id (used when ami_id is null)."
  type        = string
  default     = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"

  validation {
    condition     = startswith(var.ami_ssm_parameter, "/")
    error_message = "ami_ssm_parameter must be an SSM parameter name starting with /."
  }
}

variable "root_volume_size_gb" {
  description = "Size of the encrypted gp3 root volume in GiB (OS, CUDA, ComfyUI, models). It is billed while the instance is stopped too: about $0.08 per GiB-month, so 100 GiB is about $8/month. It must be at least the AMI's snapshot size."
  type        = number
  default     = 100

  validation {
    condition     = var.root_volume_size_gb >= 20 && var.root_volume_size_gb <= 16384 && floor(var.root_volume_size_gb) == var.root_volume_size_gb
    error_message = "root_volume_size_gb must be a whole number between 20 and 16384."
  }
}

variable "ebs_kms_key_arn" {
  description = "KMS key that encrypts the root volume of a new instance: null (default) for the AWS-managed aws/ebs key, or the ARN of a customer-managed key (the start role then gets the KMS permissions EC2 needs to start an instance whose volume it encrypts, on that key only). Set it to the key your existing instance's volume uses if that is a customer key (e.g. the account's default EBS key). Never replaces an existing instance: the key only applies when the instance is created."
  type        = string
  default     = null

  validation {
    condition     = var.ebs_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/(mrk-)?[0-9a-f-]{32,36}$", var.ebs_kms_key_arn))
    error_message = "ebs_kms_key_arn must be null or a KMS key ARN such as arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab (not an alias: the start role's permissions name the key)."
  }
}

variable "key_name" {
  description = "Name of an existing EC2 key pair for SSH, or null for none (use Session Manager instead)."
  type        = string
  default     = null

  validation {
    condition     = var.key_name == null || try(length(var.key_name) > 0 && length(var.key_name) <= 255, false)
    error_message = "key_name must be null or a key pair name of 1-255 characters."
  }
}

variable "ssh_allowed_cidrs" {
  description = "CIDR blocks allowed to reach SSH (port 22); only used when key_name is set. The whole internet is never allowed."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.ssh_allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "Each ssh_allowed_cidrs entry must be a CIDR block such as 203.0.113.7/32."
  }

  validation {
    condition     = alltrue([for c in var.ssh_allowed_cidrs : !can(regex("/0$", c))])
    error_message = "ssh_allowed_cidrs must not contain 0.0.0.0/0 or ::/0; use Session Manager or narrow the range."
  }
}

variable "market" {
  description = "\"on-demand\" or \"spot\". Spot costs less but AWS may stop the instance when it needs the capacity back (persistent request, interruption behaviour stop); the disk survives."
  type        = string
  default     = "on-demand"

  validation {
    condition     = contains(["on-demand", "spot"], var.market)
    error_message = "market must be \"on-demand\" or \"spot\"."
  }
}

variable "spot_max_price" {
  description = "Highest hourly price in USD for spot (a string such as \"0.30\"), or null for the on-demand price as the cap. Only used when market = \"spot\"."
  type        = string
  default     = null

  validation {
    condition     = var.spot_max_price == null || can(regex("^[0-9]+(\\.[0-9]+)?$", var.spot_max_price))
    error_message = "spot_max_price must be null or a decimal number such as \"0.30\"."
  }
}

variable "allowed_cidrs" {
  description = "CIDR blocks allowed to reach ComfyUI (comfyui_port): your n8n host and your own address, e.g. [\"203.0.113.7/32\"]. Empty: nothing can reach it. 0.0.0.0/0 or ::/0 needs allow_public_comfyui = true (ComfyUI has no authentication)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "Each allowed_cidrs entry must be a CIDR block such as 203.0.113.7/32."
  }

  validation {
    condition     = var.allow_public_comfyui || alltrue([for c in var.allowed_cidrs : !can(regex("/0$", c))])
    error_message = "allowed_cidrs opens ComfyUI (which has no authentication) to the whole internet; list narrower ranges or set allow_public_comfyui = true if you really mean it."
  }
}

variable "allow_public_comfyui" {
  description = "Allow 0.0.0.0/0 or ::/0 in allowed_cidrs. ComfyUI has no authentication: anyone could run jobs on your GPU."
  type        = bool
  default     = false
}

variable "comfyui_port" {
  description = "TCP port ComfyUI listens on."
  type        = number
  default     = 8188

  validation {
    condition     = var.comfyui_port >= 1024 && var.comfyui_port <= 65535 && floor(var.comfyui_port) == var.comfyui_port
    error_message = "comfyui_port must be a whole number between 1024 and 65535."
  }
}

variable "comfyui_ref" {
  description = "Git tag, branch or commit of https://github.com/comfyanonymous/ComfyUI to install. The default is the commit of ComfyUI 0.8.0 that the project's fixtures were recorded with. A change is applied at the next boot."
  type        = string
  default     = "3cd7b32f1b7e7e90395cefe7d9f9b1f89276d8ce"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$", var.comfyui_ref))
    error_message = "comfyui_ref must be a git tag, branch or commit (letters, digits, . _ / -)."
  }
}

variable "torch_index_url" {
  description = "pip index for PyTorch with CUDA (installed before ComfyUI's requirements). cu128 wheels support the T4 (g4dn) and newer GPUs."
  type        = string
  default     = "https://download.pytorch.org/whl/cu128"

  validation {
    condition     = can(regex("^https://", var.torch_index_url))
    error_message = "torch_index_url must be an https:// URL."
  }
}

variable "torch_versions" {
  description = "Exact PyTorch packages installed from torch_index_url (a matching triple), so the install does not depend on the day; ComfyUI's requirements cannot move them. The default cu128 build needs NVIDIA driver 570.26 or newer (the default AMI ships 595) and runs on the T4 (sm_75) up to Blackwell (sm_120); see modules/instance/README.md. A change is applied at the next boot."
  type = object({
    torch       = string
    torchvision = string
    torchaudio  = string
  })
  default = {
    torch       = "2.8.0"
    torchvision = "0.23.0"
    torchaudio  = "2.8.0"
  }
  nullable = false

  validation {
    condition     = alltrue([for v in [var.torch_versions.torch, var.torch_versions.torchvision, var.torch_versions.torchaudio] : can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", v))])
    error_message = "torch_versions must give exact versions such as 2.8.0 (no ranges, no local labels: the index URL picks the CUDA build)."
  }
}

variable "models_s3_uri" {
  description = "Optional s3://bucket/prefix synced (read-only) into ComfyUI's models directory at every boot, before ComfyUI starts. The instance may read that prefix only. null: no sync."
  type        = string
  default     = null

  validation {
    condition     = var.models_s3_uri == null || can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", var.models_s3_uri))
    error_message = "models_s3_uri must be null or s3://bucket or s3://bucket/prefix."
  }
}

variable "subnet_id" {
  description = "Existing public subnet for the instance (its VPC is used). null: create a minimal VPC with one public subnet and an internet gateway (no NAT gateway, no cost)."
  type        = string
  default     = null

  validation {
    condition     = var.subnet_id == null || can(regex("^subnet-[0-9a-f]{8,17}$", var.subnet_id))
    error_message = "subnet_id must be null or a subnet id such as subnet-0123456789abcdef0."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the VPC created when subnet_id is null (the public subnet takes its first /24)."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && try(tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 24, false)
    error_message = "vpc_cidr must be an IPv4 CIDR block between /16 and /24."
  }
}

variable "availability_zone" {
  description = "Availability zone of the created subnet, or null for the first zone (in name order) that offers instance_type. Ignored when subnet_id is set."
  type        = string
  default     = null

  validation {
    condition     = var.availability_zone == null || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9][a-z]$", var.availability_zone))
    error_message = "availability_zone must be null or a zone name such as us-east-1a."
  }
}

variable "create_eip" {
  description = "Give the instance an Elastic IP so its address (and the ComfyUI URL) survive stop/start. Costs $0.005/h (about $3.60/month) even while the instance is stopped. Without it the public IP changes at every start; the status function reports the current one."
  type        = bool
  default     = false
}

variable "enable_session_manager" {
  description = "Attach AmazonSSMManagedInstanceCore so you can open a shell with Session Manager (no SSH key or open port needed)."
  type        = bool
  default     = true
}

variable "detailed_monitoring" {
  description = "EC2 detailed monitoring: 1-minute instead of 5-minute CPU/network metrics, so the CPU and NetworkOut idle alarms react faster. Costs about $2.10/month for the instance's 7 metrics if it ran all month (CloudWatch bills it pro rata by the hour the instance runs)."
  type        = bool
  default     = false
}

# --------------------------------------------------------------------------------------------------
# Idle detection and the control plane
# --------------------------------------------------------------------------------------------------

variable "idle_minutes" {
  description = "Idle time before a stop (the stop rule's IDLE_MINUTES; may be fractional). The idle alarms evaluate whole metric periods covering at least this long."
  type        = number
  default     = 10

  validation {
    # 0.05 (3 s) is the smallest value the functions and the agent accept.
    condition     = var.idle_minutes >= 0.05 && var.idle_minutes <= 1440
    error_message = "idle_minutes must be between 0.05 and 1440 (one day)."
  }
}

variable "boot_grace_minutes" {
  description = "Never stop within this many minutes of a start (time to boot, install and load models)."
  type        = number
  default     = 5

  validation {
    condition     = var.boot_grace_minutes >= 0 && var.boot_grace_minutes <= 1440
    error_message = "boot_grace_minutes must be between 0 and 1440."
  }
}

variable "heartbeat_seconds" {
  description = "How often the agent writes its state record and metrics; a record older than 3 heartbeats counts as stale."
  type        = number
  default     = 60

  validation {
    condition     = var.heartbeat_seconds >= 5 && var.heartbeat_seconds <= 3600
    error_message = "heartbeat_seconds must be between 5 and 3600."
  }
}

variable "agent_self_stop_minutes" {
  description = "The agent's last line of defence: it shuts the instance down itself (shutdown behaviour is stop) after this many idle minutes, should the Lambda never stop it. Must exceed idle_minutes."
  type        = number
  default     = 60

  validation {
    condition     = var.agent_self_stop_minutes > var.idle_minutes && var.agent_self_stop_minutes <= 1440
    error_message = "agent_self_stop_minutes must be greater than idle_minutes and at most 1440."
  }
}

variable "silent_stop_minutes" {
  description = "When the agent is silent and CloudWatch has no CPU and network data, the stop function keeps the instance (emailing once after 15 minutes) and stops it after this many minutes without a sign of life (agent heartbeat, start request, launch): the one stop made without seeing whether a job runs. Must exceed agent_self_stop_minutes and idle_minutes + 10, so the agent's own self-stop comes first."
  type        = number
  default     = 90
  nullable    = false

  validation {
    condition     = var.silent_stop_minutes > var.agent_self_stop_minutes && var.silent_stop_minutes > var.idle_minutes + 10 && var.silent_stop_minutes <= 1440
    error_message = "silent_stop_minutes must be greater than agent_self_stop_minutes and idle_minutes + 10, and at most 1440."
  }
}

variable "cpu_idle_percent" {
  description = "CPU utilization (percent, per-period maximum of the EC2 metric) below which the instance counts as idle: the CPU idle alarm's threshold and the stop function's fallback when the agent is silent."
  type        = number
  default     = 5

  validation {
    condition     = var.cpu_idle_percent > 0 && var.cpu_idle_percent <= 100
    error_message = "cpu_idle_percent must be greater than 0 and at most 100."
  }
}

variable "network_idle_bytes" {
  description = "NetworkOut in bytes per 5 minutes below which the instance counts as idle (scaled to 1-minute periods with detailed monitoring)."
  type        = number
  default     = 1000000

  validation {
    condition     = var.network_idle_bytes > 0 && var.network_idle_bytes <= 1000000000000
    error_message = "network_idle_bytes must be greater than 0 and at most 1000000000000 (what the stop function accepts)."
  }
}

variable "gpu_idle_percent" {
  description = "GPU utilization (percent, from the agent) below which the GPU counts as idle: the GPU idle alarm's threshold and the agent's GPU_BUSY_PERCENT."
  type        = number
  default     = 5

  validation {
    condition     = var.gpu_idle_percent > 0 && var.gpu_idle_percent <= 100
    error_message = "gpu_idle_percent must be greater than 0 and at most 100."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the custom metrics (agent: QueueDepth, GPUUtilization, ActiveSessions by InstanceId; functions: Starts, Stops, StopsDeclined, StartToReadySeconds by service). The instance may publish to this namespace only."
  type        = string
  default     = "GpuAutostop"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._/#:-]{0,254}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1-255 characters of letters, digits and . _ / # : - and must not start with AWS/."
  }
}

variable "hourly_price_usd" {
  description = "Hourly price used in cost estimates (stop emails). null: the functions' built-in on-demand price table."
  type        = number
  default     = null

  validation {
    condition     = var.hourly_price_usd == null || try(var.hourly_price_usd >= 0 && var.hourly_price_usd <= 1000, false)
    error_message = "hourly_price_usd must be null or between 0 and 1000."
  }
}

variable "recheck_minutes" {
  description = "How often an EventBridge schedule sends the stop function a re-check, so a declined stop never leaves the instance running for ever. Costs nothing noticeable (about 8,600 short invocations a month at 5)."
  type        = number
  default     = 5

  validation {
    condition     = var.recheck_minutes >= 1 && var.recheck_minutes <= 60 && floor(var.recheck_minutes) == var.recheck_minutes
    error_message = "recheck_minutes must be a whole number between 1 and 60."
  }
}

variable "functions_zip_path" {
  description = "Path of the Lambda package that `make build` writes. null: ../build/functions.zip relative to this directory."
  type        = string
  default     = null
}

variable "agent_archive_path" {
  description = "Path of the on-instance agent archive that `make agent-archive` writes (a gzipped tar of agent/). null: ../build/agent.tar.gz relative to this directory."
  type        = string
  default     = null
}

variable "lambda_memory_mb" {
  description = "Memory of each function in MB (CPU scales with it)."
  type        = number
  default     = 256

  validation {
    condition     = var.lambda_memory_mb >= 128 && var.lambda_memory_mb <= 10240 && floor(var.lambda_memory_mb) == var.lambda_memory_mb
    error_message = "lambda_memory_mb must be a whole number between 128 and 10240."
  }
}

variable "lambda_tracing" {
  description = "AWS X-Ray active tracing for the functions (first 100,000 traces a month are free)."
  type        = bool
  default     = false
}

variable "reserved_concurrency" {
  description = "Reserved concurrency per function; -1 (the default for every function) for none. Reserving is an opt-in: Lambda lets an account reserve only its unreserved concurrency minus 100, so a new account (often limited to 10 concurrent executions) cannot reserve any and a deploy that asks for it fails half way. Example once your limit allows it: { start = 2, status = 4, stop = 2 }."
  type = object({
    start       = optional(number, -1)
    status      = optional(number, -1)
    stop        = optional(number, -1)
    cost_report = optional(number, -1)
    budget      = optional(number, -1)
  })
  # "You can reserve up to the Unreserved account concurrency value that is shown, minus 100 for
  # functions that don't have reserved concurrency." (Lambda developer guide, "Configuring reserved
  # concurrency for a function", https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html)
  default = {}

  validation {
    condition     = alltrue([for v in values(var.reserved_concurrency) : v == -1 || (v >= 1 && v <= 1000 && floor(v) == v)])
    error_message = "Each reserved_concurrency value must be -1 (unreserved) or a whole number from 1 to 1000 (0 would disable the function)."
  }
}

variable "log_retention_days" {
  description = "Retention of the functions' CloudWatch log groups, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "encrypt_logs" {
  description = "Encrypt the functions' log groups with the project's KMS key (no extra monthly cost; a few KMS requests)."
  type        = bool
  default     = true
}

variable "kms_key_deletion_window_days" {
  description = "Waiting period before the project's KMS key (alerts topic, dead-letter queue, logs, artifacts) is deleted after `make destroy`. The key costs $1/month."
  type        = number
  default     = 7

  validation {
    condition     = var.kms_key_deletion_window_days >= 7 && var.kms_key_deletion_window_days <= 30 && floor(var.kms_key_deletion_window_days) == var.kms_key_deletion_window_days
    error_message = "kms_key_deletion_window_days must be a whole number between 7 and 30."
  }
}

# --------------------------------------------------------------------------------------------------
# Cost guard: alerts, budgets, hard cap, weekly cost report, dashboard
# --------------------------------------------------------------------------------------------------

variable "alert_emails" {
  description = "Email addresses for alerts (stops, function errors, dead-letter messages, budgets). Each address gets a confirmation email from AWS first."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "Each alert_emails entry must look like an email address (name@example.com)."
  }

  validation {
    condition     = length(var.alert_emails) <= 10 && length(distinct(var.alert_emails)) == length(var.alert_emails)
    error_message = "alert_emails takes at most 10 distinct addresses (AWS Budgets sends to at most 10 per notification)."
  }
}

variable "budget_normal_usd" {
  description = "Monthly cost budget for normal use in USD; notifications at 80% and 100% of actual and 100% of forecasted spend."
  type        = number
  default     = 50

  validation {
    condition     = var.budget_normal_usd > 0
    error_message = "budget_normal_usd must be greater than 0."
  }
}

variable "budget_peak_usd" {
  description = "Monthly cost budget for a peak month in USD (same notifications). Must be at least budget_normal_usd."
  type        = number
  default     = 150

  validation {
    condition     = var.budget_peak_usd > 0 && var.budget_peak_usd >= var.budget_normal_usd
    error_message = "budget_peak_usd must be greater than 0 and at least budget_normal_usd."
  }
}

variable "budget_filter_project_tag" {
  description = "Count only costs tagged Project = project_tag in the budgets (the hard cap's too) and in the weekly cost report's Cost Explorer figures. Only works after you activate Project as a cost-allocation tag in the Billing console; until then such a budget sees $0. false: the budgets cover the whole account (safer) and the report counts the account's EC2 costs."
  type        = bool
  default     = false
}

variable "budgets_include_credits" {
  description = "Count credits and refunds in the budgets (the hard cap's too). false (default): the budgets count gross cost, so they fire on an account that lives on promotional credits, where the net cost stays near $0 and a budget that counts credits never would."
  type        = bool
  default     = false
}

variable "hard_cap_usd" {
  description = "Hard spend cap in USD a month, or null (default) for none. When the project's own month-to-date estimate (checked at every start and stop re-check) or AWS Budgets (a third budget, ACTUAL > 100%) says it is passed, the instance is stopped (a running job is lost) and starts are refused with BudgetExceeded until you run `make reset-cap`. Adds the budget function, a KMS-encrypted SNS topic and a budget (AWS documents the first two budgets as free and $0.02 a day for each further one)."
  type        = number
  default     = null

  validation {
    condition     = var.hard_cap_usd == null || try(var.hard_cap_usd >= 0.01 && var.hard_cap_usd <= 1000000, false)
    error_message = "hard_cap_usd must be null or between 0.01 and 1000000 (what the functions accept)."
  }
}

variable "fixed_monthly_usd" {
  description = "Monthly costs that do not depend on running time (root volume, alarms, KMS key, ...) in the hard cap's estimate. null: the functions' pricing table for the defaults (a 100 GiB volume); set it if you changed root_volume_size_gb, create_eip or detailed_monitoring (`make cost` shows the figures)."
  type        = number
  default     = null

  validation {
    condition     = var.fixed_monthly_usd == null || try(var.fixed_monthly_usd >= 0 && var.fixed_monthly_usd <= 100000, false)
    error_message = "fixed_monthly_usd must be null or between 0 and 100000 (what the functions accept)."
  }
}

variable "enable_cost_report" {
  description = "Deploy the weekly cost report function and its schedule: Cost Explorer's month-to-date and last-7-days cost next to the project's own figures, by email through the alerts topic (two Cost Explorer requests, $0.02 a report)."
  type        = bool
  default     = true
}

variable "cost_report_schedule" {
  description = "When the cost report is sent: an EventBridge schedule expression in UTC. Default: Mondays 07:00 UTC."
  type        = string
  default     = "cron(0 7 ? * MON *)"

  validation {
    # At most a few times a day: each report makes two Cost Explorer requests ($0.01 each).
    # Exactly one of day-of-month and day-of-week is "?": "You can't specify the Day-of-month and
    # Day-of-week fields in the same cron expression. If you specify a value (or a *) in one of
    # the fields, you must use a ? (question mark) in the other." (EventBridge user guide, "Cron
    # expressions reference", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html)
    # EventBridge refuses anything else only when the rule is created, half way through an apply.
    condition     = can(regex("^(cron\\([0-5]?[0-9] ([01]?[0-9]|2[0-3])(,([01]?[0-9]|2[0-3]))* (\\? [^ ()]+ [^ ()?]+|[^ ()?]+ [^ ()]+ \\?) [^ ()]+\\)|rate\\((1 day|([2-9]|[1-9][0-9]+) days)\\))$", var.cost_report_schedule))
    error_message = "cost_report_schedule must be an EventBridge cron(minute hour day-of-month month day-of-week year) with a single minute (0-59), fixed hours (0-23) and ? in exactly one of day-of-month and day-of-week (EventBridge refuses both or neither), e.g. cron(0 7 ? * MON *) or cron(0 7 1 * ? *), or rate(N days): at most a few reports a day (each makes two $0.01 Cost Explorer requests)."
  }
}

variable "create_dashboard" {
  description = "Create the CloudWatch dashboard (first 3 dashboards in an account are free, then $3/month each)."
  type        = bool
  default     = true
}

# --------------------------------------------------------------------------------------------------
# n8n access
# --------------------------------------------------------------------------------------------------

variable "n8n_create_user" {
  description = "Create an IAM user for n8n with the invoke-only policy (start and status)."
  type        = bool
  default     = false
}

variable "n8n_create_access_key" {
  description = "Also create an access key for that user. Its secret is then stored in the Terraform state (keep the state private) and shown by `terraform output -raw n8n_secret_access_key`. Prefer creating the key in the console."
  type        = bool
  default     = false

  validation {
    condition     = !var.n8n_create_access_key || var.n8n_create_user
    error_message = "n8n_create_access_key needs n8n_create_user = true."
  }
}

variable "n8n_role_trusted_arns" {
  description = "ARNs of principals (accounts, roles, users) allowed to assume a role for n8n that carries the invoke-only policy (for n8n's \"assume role\" authentication). Empty: no role."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.n8n_role_trusted_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(root|role/.+|user/.+)$", a))])
    error_message = "Each n8n_role_trusted_arns entry must be an IAM ARN such as arn:aws:iam::123456789012:role/n8n."
  }
}

variable "n8n_attach_to_users" {
  description = "Names of existing IAM users to attach the invoke-only policy to."
  type        = list(string)
  default     = []
}

variable "install_timeout_minutes" {
  description = "Longest the first-boot install of ComfyUI may take (the agent reports \"installing\" meanwhile); after it the stop function stops the instance and emails why, so a stuck install cannot bill forever."
  type        = number
  default     = 45
  nullable    = false
  validation {
    condition     = var.install_timeout_minutes >= 10 && var.install_timeout_minutes <= 240 && floor(var.install_timeout_minutes) == var.install_timeout_minutes
    error_message = "install_timeout_minutes must be a whole number between 10 and 240."
  }
}
