# The GPU instance: network (existing subnet or a minimal VPC), security group, least-privilege
# instance role, the private artifacts bucket the instance bootstraps from, and the instance.

data "aws_default_tags" "current" {}

locals {
  spot = var.market == "spot"

  # ----- network -----
  create_vpc = var.subnet_id == null
  # The first zone (in name order) that offers the instance type, unless one was given.
  zone = var.availability_zone != null ? var.availability_zone : try(sort(data.aws_ec2_instance_type_offerings.gpu[0].locations)[0], null)

  subnet_id = local.create_vpc ? aws_subnet.public[0].id : var.subnet_id
  vpc_id    = local.create_vpc ? aws_vpc.main[0].id : data.aws_subnet.existing[0].vpc_id

  ssh_cidrs = var.key_name == null ? [] : var.ssh_allowed_cidrs

  # ----- AMI -----
  ami_id = var.ami_id != null ? var.ami_id : data.aws_ssm_parameter.ami[0].insecure_value
  # The size in GiB of the AMI's root snapshot (null when the AMI does not say).
  ami_root_snapshot_gb = try(tonumber(one([
    for m in data.aws_ami.selected.block_device_mappings : m.ebs["volume_size"] if m.device_name == data.aws_ami.selected.root_device_name
  ])), null)

  # ----- root volume key -----
  # Named for new instances only (kms_key_id is ignored after creation, see aws_instance.gpu).
  ebs_kms_key_arn = var.ebs_kms_key_arn != null ? var.ebs_kms_key_arn : data.aws_kms_key.ebs_default[0].arn

  # ----- instance types the instance may run as: the declared one, then the start function's
  # fallbacks, all in the instance's zone -----
  instance_types = concat([var.instance_type], var.fallback_instance_types)
  instance_zone  = local.create_vpc ? local.zone : data.aws_subnet.existing[0].availability_zone
  offered_types  = toset(data.aws_ec2_instance_type_offerings.zone.instance_types)
  missing_types  = [for t in local.instance_types : t if !contains(local.offered_types, t)]

  # ----- artifacts the instance reads at every boot -----
  artifact_keys = {
    bootstrap = "instance/bootstrap.sh"
    settings  = "instance/settings.env"
    agent     = "instance/agent.tar.gz"
  }
  models_path   = var.models_s3_uri == null ? null : trimprefix(var.models_s3_uri, "s3://")
  models_bucket = local.models_path == null ? null : split("/", local.models_path)[0]
  models_prefix = local.models_path == null ? null : trim(substr(local.models_path, length(local.models_bucket), -1), "/")

  settings = merge(var.agent_settings, {
    COMFYUI_REF     = var.comfyui_ref
    COMFYUI_PORT    = tostring(var.comfyui_port)
    TORCH_INDEX_URL = var.torch_index_url
    # One CUDA build, exact versions (README.md, "PyTorch"); the bootstrap installs these pins.
    TORCH_VERSION       = var.torch_versions.torch
    TORCHVISION_VERSION = var.torch_versions.torchvision
    TORCHAUDIO_VERSION  = var.torch_versions.torchaudio
    MODELS_S3_URI       = var.models_s3_uri == null ? "" : var.models_s3_uri
  })
  # One KEY='value' line per setting; single quotes are closed, escaped and reopened.
  settings_env = join("", [for k in sort(keys(local.settings)) : "${k}='${replace(local.settings[k], "'", "'\\''")}'\n"])
}

# --------------------------------------------------------------------------------------------------
# AMI
# --------------------------------------------------------------------------------------------------

data "aws_ssm_parameter" "ami" {
  count = var.ami_id == null ? 1 : 0
  name  = var.ami_ssm_parameter
}

# The resolved AMI: its root snapshot size bounds root_volume_size_gb (see aws_instance.gpu).
data "aws_ami" "selected" {
  filter {
    name   = "image-id"
    values = [local.ami_id]
  }
}

# --------------------------------------------------------------------------------------------------
# Root volume key: the AWS-managed aws/ebs key unless ebs_kms_key_arn names a customer key.
# Naming the key keeps StartInstances working where the account's default EBS key is a customer
# key the start role may not use. DescribeKey on the predefined alias creates the AWS-managed key
# if the account has none yet ("If you specify a predefined Amazon Web Services alias (an Amazon
# Web Services alias with no key ID), KMS associates the alias with an Amazon Web Services managed
# key and returns its KeyId and Arn", AWS KMS API reference, DescribeKey).
# --------------------------------------------------------------------------------------------------

data "aws_kms_key" "ebs_default" {
  count  = var.ebs_kms_key_arn == null ? 1 : 0
  key_id = "alias/aws/ebs"
}

# --------------------------------------------------------------------------------------------------
# Network: an existing subnet, or a VPC with one public subnet and no NAT gateway
# --------------------------------------------------------------------------------------------------

data "aws_subnet" "existing" {
  count = local.create_vpc ? 0 : 1
  id    = var.subnet_id
}

data "aws_ec2_instance_type_offerings" "gpu" {
  count         = local.create_vpc && var.availability_zone == null ? 1 : 0
  location_type = "availability-zone"

  filter {
    name   = "instance-type"
    values = [var.instance_type]
  }
}

# Which of the instance's types its zone offers (DescribeInstanceTypeOfferings with location type
# availability-zone, filtered on location and instance-type). A type the zone lacks fails the
# launch, or later the start function's switch to it, only at apply or start time.
data "aws_ec2_instance_type_offerings" "zone" {
  location_type = "availability-zone"

  filter {
    name   = "location"
    values = [coalesce(local.instance_zone, "none")]
  }

  filter {
    name   = "instance-type"
    values = local.instance_types
  }
}

resource "aws_vpc" "main" {
  #checkov:skip=CKV2_AWS_11:VPC flow logs cost more than this one-instance VPC is worth; the security group admits only allowed_cidrs.
  count                = local.create_vpc ? 1 : 0
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = var.name }
}

# Take over the VPC's default security group and leave it without rules (nothing uses it).
resource "aws_default_security_group" "main" {
  count  = local.create_vpc ? 1 : 0
  vpc_id = aws_vpc.main[0].id

  tags = { Name = "${var.name}-default-unused" }
}

resource "aws_internet_gateway" "main" {
  count  = local.create_vpc ? 1 : 0
  vpc_id = aws_vpc.main[0].id

  tags = { Name = var.name }
}

resource "aws_subnet" "public" {
  count             = local.create_vpc ? 1 : 0
  vpc_id            = aws_vpc.main[0].id
  cidr_block        = cidrsubnet(var.vpc_cidr, 24 - tonumber(split("/", var.vpc_cidr)[1]), 0)
  availability_zone = local.zone
  # The instance asks for its own public address; nothing else launched here gets one.
  map_public_ip_on_launch = false

  tags = { Name = "${var.name}-public" }
}

resource "aws_route_table" "public" {
  count  = local.create_vpc ? 1 : 0
  vpc_id = aws_vpc.main[0].id

  tags = { Name = "${var.name}-public" }
}

resource "aws_route" "internet" {
  count                  = local.create_vpc ? 1 : 0
  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.main[0].id
}

resource "aws_route_table_association" "public" {
  count          = local.create_vpc ? 1 : 0
  subnet_id      = aws_subnet.public[0].id
  route_table_id = aws_route_table.public[0].id
}

# --------------------------------------------------------------------------------------------------
# Security group: ComfyUI from allowed_cidrs only; SSH only with a key pair and ssh_allowed_cidrs
# --------------------------------------------------------------------------------------------------

resource "aws_security_group" "gpu" {
  name_prefix = "${var.name}-gpu-"
  description = "${var.name}: ComfyUI from allowed CIDRs only"
  vpc_id      = local.vpc_id

  tags = { Name = "${var.name}-gpu" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "comfyui" {
  for_each          = toset(var.allowed_cidrs)
  security_group_id = aws_security_group.gpu.id
  description       = "ComfyUI from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = var.comfyui_port
  to_port           = var.comfyui_port
  cidr_ipv4         = strcontains(each.value, ":") ? null : each.value
  cidr_ipv6         = strcontains(each.value, ":") ? each.value : null
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each          = toset(local.ssh_cidrs)
  security_group_id = aws_security_group.gpu.id
  description       = "SSH from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = strcontains(each.value, ":") ? null : each.value
  cidr_ipv6         = strcontains(each.value, ":") ? each.value : null
}

resource "aws_vpc_security_group_egress_rule" "all" {
  #checkov:skip=CKV_AWS_382:The instance installs ComfyUI, PyTorch and models from the internet (pip, GitHub, Hugging Face) and calls AWS APIs; there is no NAT gateway or VPC endpoint to narrow this to.
  security_group_id = aws_security_group.gpu.id
  description       = "Outbound: package installs, model downloads, AWS APIs"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

# --------------------------------------------------------------------------------------------------
# Private artifacts bucket: bootstrap script, settings, agent archive (read at every boot)
# --------------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV_AWS_18:Holds three build artifacts written only by Terraform; access logging would need a second bucket for no insight.
  #checkov:skip=CKV_AWS_144:Build artifacts are re-uploaded by every apply; cross-region replication adds cost and no resilience worth having.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to changes of these artifacts; the instance reads them at boot.
  bucket_prefix = "${var.name}-boot-"
  # Only Terraform-managed build artifacts live here; `make destroy` must be able to remove it.
  force_destroy = true
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    id     = "expire-old-artifacts"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.artifacts]
}

resource "aws_s3_bucket_policy" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.artifacts.arn, "${aws_s3_bucket.artifacts.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })

  depends_on = [aws_s3_bucket_public_access_block.artifacts]
}

resource "aws_s3_object" "bootstrap" {
  bucket                 = aws_s3_bucket.artifacts.id
  key                    = local.artifact_keys.bootstrap
  source                 = "${path.module}/files/bootstrap.sh"
  source_hash            = filemd5("${path.module}/files/bootstrap.sh")
  content_type           = "text/x-shellscript"
  server_side_encryption = "aws:kms"
  kms_key_id             = var.kms_key_arn

  depends_on = [aws_s3_bucket_server_side_encryption_configuration.artifacts]
}

resource "aws_s3_object" "settings" {
  bucket                 = aws_s3_bucket.artifacts.id
  key                    = local.artifact_keys.settings
  content                = local.settings_env
  content_type           = "text/plain"
  server_side_encryption = "aws:kms"
  kms_key_id             = var.kms_key_arn

  depends_on = [aws_s3_bucket_server_side_encryption_configuration.artifacts]
}

resource "aws_s3_object" "agent" {
  bucket                 = aws_s3_bucket.artifacts.id
  key                    = local.artifact_keys.agent
  source                 = var.agent_archive_path
  source_hash            = filemd5(var.agent_archive_path)
  content_type           = "application/gzip"
  server_side_encryption = "aws:kms"
  kms_key_id             = var.kms_key_arn

  depends_on = [aws_s3_bucket_server_side_encryption_configuration.artifacts]
}

# --------------------------------------------------------------------------------------------------
# Instance role: only what the agent and the bootstrap need
# --------------------------------------------------------------------------------------------------

locals {
  instance_policy = {
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          # PutMetricData has no resource-level permissions; the namespace condition is the scope.
          Sid       = "PublishAgentMetricsToOwnNamespaceOnly"
          Effect    = "Allow"
          Action    = "cloudwatch:PutMetricData"
          Resource  = "*"
          Condition = { StringEquals = { "cloudwatch:namespace" = var.metrics_namespace } }
        },
        {
          Sid      = "ReadWriteOwnAgentStateRecord"
          Effect   = "Allow"
          Action   = ["ssm:GetParameter", "ssm:PutParameter"]
          Resource = var.agent_state_parameter_arn
        },
        {
          Sid      = "ReadBootArtifacts"
          Effect   = "Allow"
          Action   = "s3:GetObject"
          Resource = [for k in sort(keys(local.artifact_keys)) : "${aws_s3_bucket.artifacts.arn}/${local.artifact_keys[k]}"]
        },
        {
          Sid       = "DecryptBootArtifactsViaS3"
          Effect    = "Allow"
          Action    = "kms:Decrypt"
          Resource  = var.kms_key_arn
          Condition = { StringEquals = { "kms:ViaService" = "s3.${var.region}.amazonaws.com" } }
        },
      ],
      # Optional read-only access to the models prefix.
      flatten([for bucket in(local.models_bucket == null ? [] : [local.models_bucket]) : [
        merge(
          {
            Sid      = "ListModelsPrefix"
            Effect   = "Allow"
            Action   = "s3:ListBucket"
            Resource = "arn:${var.partition}:s3:::${bucket}"
          },
          { for k, v in { Condition = { StringLike = { "s3:prefix" = [local.models_prefix, "${local.models_prefix}/*"] } } } : k => v if local.models_prefix != "" },
        ),
        {
          Sid      = "ReadModelsPrefix"
          Effect   = "Allow"
          Action   = "s3:GetObject"
          Resource = local.models_prefix == "" ? "arn:${var.partition}:s3:::${bucket}/*" : "arn:${var.partition}:s3:::${bucket}/${local.models_prefix}/*"
        },
      ]]),
    )
  }
}

resource "aws_iam_role" "instance" {
  name_prefix = "${var.name}-instance-"
  description = "${var.name} GPU instance: agent metrics and state record, boot artifacts"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "instance" {
  name   = "agent-and-boot"
  role   = aws_iam_role.instance.id
  policy = jsonencode(local.instance_policy)
}

resource "aws_iam_role_policy_attachment" "session_manager" {
  count      = var.enable_session_manager ? 1 : 0
  role       = aws_iam_role.instance.name
  policy_arn = "arn:${var.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "instance" {
  name_prefix = "${var.name}-instance-"
  role        = aws_iam_role.instance.name
}

# --------------------------------------------------------------------------------------------------
# The instance
# --------------------------------------------------------------------------------------------------

resource "aws_instance" "gpu" {
  #checkov:skip=CKV_AWS_88:n8n calls ComfyUI directly on its public address (no NAT gateway or load balancer, to keep the cost near zero); the security group admits allowed_cidrs only.
  ami                         = local.ami_id
  instance_type               = var.instance_type
  subnet_id                   = local.subnet_id
  vpc_security_group_ids      = [aws_security_group.gpu.id]
  iam_instance_profile        = aws_iam_instance_profile.instance.name
  key_name                    = var.key_name
  associate_public_ip_address = true
  ebs_optimized               = true
  monitoring                  = var.detailed_monitoring
  # The agent's last-resort self-stop is a shutdown; it must stop, never terminate.
  instance_initiated_shutdown_behavior = "stop"

  # First boot only: installs a unit that runs the bootstrap from S3 at every boot. All settings
  # live in the S3 objects, so a settings change never needs a new user-data.
  user_data = templatefile("${path.module}/templates/user_data.sh.tftpl", {
    region        = var.region
    bootstrap_uri = "s3://${aws_s3_bucket.artifacts.id}/${local.artifact_keys.bootstrap}"
  })

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size_gb
    encrypted             = true
    kms_key_id            = local.ebs_kms_key_arn
    delete_on_termination = true
  }

  # Cost allocation: the root volume is what costs money while the instance is stopped.
  volume_tags = merge(data.aws_default_tags.current.tags, { Name = "${var.name}-root" })

  dynamic "instance_market_options" {
    for_each = local.spot ? [1] : []
    content {
      market_type = "spot"
      spot_options {
        spot_instance_type             = "persistent"
        instance_interruption_behavior = "stop"
        max_price                      = var.spot_max_price
      }
    }
  }

  tags = { Name = var.name }

  lifecycle {
    # ami: a newer AMI in the SSM parameter must not replace the instance (and its disk).
    # instance_type: the start function applies the declared type while the instance is stopped
    #   (INSTANCE_TYPE); letting Terraform do it would stop/start, i.e. start, the instance.
    # user_data: stable by design (see above); a change would also stop/start the instance.
    # root_block_device[0].kms_key_id: a new key forces a new instance (and a new, empty disk);
    #   the key is for new instances only. An existing instance keeps the key its disk has.
    ignore_changes = [ami, instance_type, user_data, root_block_device[0].kms_key_id]

    precondition {
      condition     = length(local.missing_types) == 0
      error_message = "The instance's zone ${coalesce(local.instance_zone, "(none: no zone of the region offers ${var.instance_type})")} does not offer ${join(", ", local.missing_types)} (instance_type and fallback_instance_types must all be offered there, or the launch or the start function's switch fails). Pick other types, or a zone that offers them all: availability_zone, or a subnet_id in such a zone (aws ec2 describe-instance-type-offerings --location-type availability-zone --filters Name=instance-type,Values=${join(",", local.instance_types)})."
    }

    # Checked when the instance is created from the resolved AMI (ami is ignored afterwards, so a
    # newer, larger AMI in the SSM parameter never blocks a plan of an existing stack).
    postcondition {
      condition     = self.ami != local.ami_id || local.ami_root_snapshot_gb == null || self.root_block_device[0].volume_size >= local.ami_root_snapshot_gb
      error_message = "root_volume_size_gb = ${var.root_volume_size_gb} is smaller than the root snapshot of AMI ${local.ami_id} (${coalesce(local.ami_root_snapshot_gb, 0)} GiB); EC2 refuses to launch it. Set root_volume_size_gb to at least ${coalesce(local.ami_root_snapshot_gb, 0)}."
    }

    # "While a Spot Instance is stopped, you can modify some of its instance attributes, but not
    # the instance type." (EC2 user guide, "Behavior of Spot Instance interruptions",
    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/interruption-behavior.html). So a new
    # instance_type for an existing spot instance is refused here rather than left to the start
    # function, which AWS would refuse; replacing the instance would also replace its disk.
    postcondition {
      condition     = !local.spot || self.instance_type == var.instance_type
      error_message = "instance_type changed from ${self.instance_type} to ${var.instance_type} on a spot instance: AWS does not let a spot instance change type. Keep instance_type = \"${self.instance_type}\", or replace the instance and its root disk on purpose (models and outputs on it are lost): terraform -chdir=terraform apply -replace=module.instance.aws_instance.gpu."
    }
  }

  depends_on = [
    aws_s3_object.bootstrap,
    aws_s3_object.settings,
    aws_s3_object.agent,
    aws_iam_role_policy.instance,
    aws_route_table_association.public,
  ]
}

locals {
  # A stopped instance without an Elastic IP has no public address ("").
  public_ip = try(coalesce(var.create_eip ? aws_eip.gpu[0].public_ip : aws_instance.gpu.public_ip), null)
}

resource "aws_eip" "gpu" {
  count    = var.create_eip ? 1 : 0
  domain   = "vpc"
  instance = aws_instance.gpu.id

  tags = { Name = var.name }

  depends_on = [aws_internet_gateway.main]
}
