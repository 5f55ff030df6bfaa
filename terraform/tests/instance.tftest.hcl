# modules/instance: hardening, on-demand vs spot, and the optional pieces (Elastic IP, SSH, existing
# subnet, Session Manager, detailed monitoring, models prefix) appear only when asked.
# `command = apply` with the mock provider: nothing real is created, computed values are mocked.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  name                      = "gpu-autostop"
  region                    = "us-east-1"
  account_id                = "123456789012"
  instance_type             = "g4dn.xlarge"
  ami_ssm_parameter         = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"
  root_volume_size_gb       = 100
  market                    = "on-demand"
  allowed_cidrs             = ["203.0.113.7/32"]
  comfyui_port              = 8188
  comfyui_ref               = "v0.8.0"
  torch_index_url           = "https://download.pytorch.org/whl/cu128"
  torch_versions            = { torch = "2.8.0", torchvision = "0.23.0", torchaudio = "2.8.0" }
  vpc_cidr                  = "10.42.0.0/16"
  create_eip                = false
  enable_session_manager    = true
  detailed_monitoring       = false
  kms_key_arn               = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  agent_archive_path        = "tests/fixtures/placeholder-artifact.txt"
  agent_state_parameter_arn = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/agent-state"
  metrics_namespace         = "GpuAutostop"
  agent_settings = {
    AGENT_STATE_PARAMETER = "/gpu-autostop/agent-state"
    METRICS_NAMESPACE     = "GpuAutostop"
    IDLE_MINUTES          = "10"
  }
}

run "on_demand_defaults_are_hardened" {
  module {
    source = "./modules/instance"
  }

  assert {
    condition     = length(aws_instance.gpu.instance_market_options) == 0
    error_message = "An on-demand instance must not carry spot market options."
  }

  assert {
    condition     = aws_instance.gpu.metadata_options[0].http_tokens == "required" && aws_instance.gpu.metadata_options[0].http_endpoint == "enabled" && aws_instance.gpu.metadata_options[0].http_put_response_hop_limit == 1
    error_message = "IMDSv2 must be required (tokens required, hop limit 1)."
  }

  assert {
    condition     = aws_instance.gpu.root_block_device[0].volume_type == "gp3" && aws_instance.gpu.root_block_device[0].encrypted == true && aws_instance.gpu.root_block_device[0].volume_size == 100
    error_message = "The root volume must be an encrypted gp3 volume of root_volume_size_gb."
  }

  assert {
    condition     = aws_instance.gpu.instance_initiated_shutdown_behavior == "stop" && aws_instance.gpu.ebs_optimized == true
    error_message = "The instance must stop (not terminate) on shutdown and be EBS-optimized."
  }

  assert {
    condition     = aws_instance.gpu.monitoring == false && aws_instance.gpu.associate_public_ip_address == true
    error_message = "Basic monitoring by default, and a public address for n8n to reach ComfyUI."
  }

  assert {
    condition     = aws_instance.gpu.ami == "ami-0123456789abcdef0" && length(data.aws_ssm_parameter.ami) == 1
    error_message = "Without ami_id the AMI comes from the public SSM parameter."
  }

  assert {
    condition     = length(aws_eip.gpu) == 0 && output.comfyui_url == "http://198.51.100.10:8188"
    error_message = "No Elastic IP unless asked; the URL uses the instance's public IP."
  }

  assert {
    condition     = length(aws_vpc.main) == 1 && length(aws_internet_gateway.main) == 1 && length(aws_default_security_group.main) == 1
    error_message = "Without subnet_id a minimal VPC (with an internet gateway, default SG locked down) is created."
  }

  assert {
    condition     = aws_subnet.public[0].cidr_block == "10.42.0.0/24" && aws_subnet.public[0].availability_zone == "us-east-1a" && aws_subnet.public[0].map_public_ip_on_launch == false
    error_message = "The subnet takes the VPC's first /24 in the first zone (name order) that offers the type, and assigns no public IPs by default."
  }

  assert {
    condition     = keys(aws_vpc_security_group_ingress_rule.comfyui) == ["203.0.113.7/32"] && aws_vpc_security_group_ingress_rule.comfyui["203.0.113.7/32"].from_port == 8188 && aws_vpc_security_group_ingress_rule.comfyui["203.0.113.7/32"].to_port == 8188 && aws_vpc_security_group_ingress_rule.comfyui["203.0.113.7/32"].cidr_ipv4 == "203.0.113.7/32"
    error_message = "ComfyUI's port must be open to allowed_cidrs only."
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.ssh) == 0
    error_message = "No SSH rule without a key pair."
  }

  assert {
    condition     = length(aws_iam_role_policy_attachment.session_manager) == 1
    error_message = "Session Manager is on by default."
  }

  assert {
    condition     = strcontains(aws_instance.gpu.user_data, "s3://gpu-autostop-boot-20260101000000000000000001/instance/bootstrap.sh") && length(aws_instance.gpu.user_data) < 16384
    error_message = "The user-data must fetch the bootstrap from the artifacts bucket and stay under 16 KB."
  }

  assert {
    condition     = strcontains(aws_s3_object.settings.content, "AGENT_STATE_PARAMETER='/gpu-autostop/agent-state'\n") && strcontains(aws_s3_object.settings.content, "COMFYUI_PORT='8188'\n") && strcontains(aws_s3_object.settings.content, "COMFYUI_REF='v0.8.0'\n") && strcontains(aws_s3_object.settings.content, "MODELS_S3_URI=''\n")
    error_message = "settings.env must carry the agent settings and ComfyUI's version and port."
  }

  assert {
    condition     = [for r in aws_s3_bucket_server_side_encryption_configuration.artifacts.rule : r.apply_server_side_encryption_by_default[0].kms_master_key_id] == [var.kms_key_arn] && aws_s3_bucket_public_access_block.artifacts.block_public_policy == true
    error_message = "The artifacts bucket must be KMS-encrypted and private."
  }

  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.instance.policy).Statement : s.Sid] == [
      "PublishAgentMetricsToOwnNamespaceOnly",
      "ReadWriteOwnAgentStateRecord",
      "ReadBootArtifacts",
      "DecryptBootArtifactsViaS3",
    ]
    error_message = "Without models_s3_uri the instance role has only the agent's and the bootstrap's permissions."
  }

  assert {
    condition     = jsondecode(aws_iam_role_policy.instance.policy).Statement[0].Condition.StringEquals["cloudwatch:namespace"] == "GpuAutostop"
    error_message = "PutMetricData must be limited to the project's namespace."
  }

  assert {
    condition     = jsondecode(aws_iam_role_policy.instance.policy).Statement[1].Resource == var.agent_state_parameter_arn
    error_message = "The instance may read and write its own state record only."
  }

  assert {
    condition = jsondecode(aws_iam_role_policy.instance.policy).Statement[2].Resource == [
      "arn:aws:s3:::gpu-autostop-boot-20260101000000000000000001/instance/agent.tar.gz",
      "arn:aws:s3:::gpu-autostop-boot-20260101000000000000000001/instance/bootstrap.sh",
      "arn:aws:s3:::gpu-autostop-boot-20260101000000000000000001/instance/settings.env",
    ]
    error_message = "The instance may read exactly its three boot artifacts."
  }
}

run "later_ami_and_type_changes_do_not_touch_the_instance" {
  # Same state as the first run: an update of that instance.
  module {
    source = "./modules/instance"
  }

  variables {
    ami_id        = "ami-0fedcba9876543210"
    instance_type = "g5.xlarge"
  }

  assert {
    condition     = aws_instance.gpu.ami == "ami-0123456789abcdef0" && output.ami_id == "ami-0fedcba9876543210"
    error_message = "A newer AMI must not replace (or change) the existing instance."
  }

  assert {
    condition     = aws_instance.gpu.instance_type == "g4dn.xlarge"
    error_message = "Terraform must leave the type to the start function (it would stop/start the instance)."
  }
}

run "spot_is_persistent_and_stops_on_interruption" {
  # A state of its own: a fresh instance, not an update of the previous run's.
  state_key = "spot_is_persistent_and_stops_on_interruption"

  module {
    source = "./modules/instance"
  }

  variables {
    market         = "spot"
    spot_max_price = "0.30"
  }

  assert {
    condition     = aws_instance.gpu.instance_market_options[0].market_type == "spot"
    error_message = "market = spot must request a spot instance."
  }

  assert {
    condition     = aws_instance.gpu.instance_market_options[0].spot_options[0].spot_instance_type == "persistent" && aws_instance.gpu.instance_market_options[0].spot_options[0].instance_interruption_behavior == "stop"
    error_message = "The spot request must be persistent and stop (not terminate) on interruption."
  }

  assert {
    condition     = aws_instance.gpu.instance_market_options[0].spot_options[0].max_price == "0.30"
    error_message = "spot_max_price must be the spot price cap."
  }
}

run "optional_pieces_when_asked" {
  # A state of its own: a fresh instance, not an update of the previous run's.
  state_key = "optional_pieces_when_asked"

  module {
    source = "./modules/instance"
  }

  variables {
    create_eip             = true
    key_name               = "laptop"
    ssh_allowed_cidrs      = ["203.0.113.7/32", "2001:db8::/64"]
    allowed_cidrs          = ["203.0.113.7/32", "2001:db8::/64"]
    subnet_id              = "subnet-0fedcba9876543210"
    enable_session_manager = false
    detailed_monitoring    = true
    ami_id                 = "ami-0fedcba9876543210"
    models_s3_uri          = "s3://my-models/comfyui/"
  }

  assert {
    condition     = length(aws_eip.gpu) == 1 && output.comfyui_url == "http://198.51.100.20:8188" && output.public_ip == "198.51.100.20"
    error_message = "create_eip must attach an Elastic IP and the URL must use it."
  }

  assert {
    condition     = length(aws_vpc.main) == 0 && length(aws_subnet.public) == 0 && length(aws_internet_gateway.main) == 0 && length(data.aws_ec2_instance_type_offerings.gpu) == 0
    error_message = "With subnet_id no network is created."
  }

  assert {
    condition     = aws_instance.gpu.subnet_id == "subnet-0fedcba9876543210" && aws_security_group.gpu.vpc_id == "vpc-0123456789abcdef0"
    error_message = "The instance must run in the given subnet, its security group in that subnet's VPC."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.ssh["203.0.113.7/32"].cidr_ipv4 == "203.0.113.7/32" && aws_vpc_security_group_ingress_rule.ssh["2001:db8::/64"].cidr_ipv6 == "2001:db8::/64" && aws_vpc_security_group_ingress_rule.ssh["2001:db8::/64"].from_port == 22
    error_message = "With a key pair, SSH opens to ssh_allowed_cidrs (IPv4 and IPv6)."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.comfyui["2001:db8::/64"].cidr_ipv6 == "2001:db8::/64" && aws_vpc_security_group_ingress_rule.comfyui["2001:db8::/64"].cidr_ipv4 == null && aws_vpc_security_group_ingress_rule.comfyui["203.0.113.7/32"].cidr_ipv4 == "203.0.113.7/32"
    error_message = "IPv6 CIDRs must get IPv6 rules, IPv4 CIDRs IPv4 rules."
  }

  assert {
    condition     = length(aws_iam_role_policy_attachment.session_manager) == 0 && aws_instance.gpu.monitoring == true
    error_message = "Session Manager off and detailed monitoring on must be honoured."
  }

  assert {
    condition     = aws_instance.gpu.ami == "ami-0fedcba9876543210" && length(data.aws_ssm_parameter.ami) == 0
    error_message = "An explicit ami_id must be used without reading the SSM parameter."
  }

  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.instance.policy).Statement : s if startswith(s.Sid, "ListModels") || startswith(s.Sid, "ReadModels")] == [
      {
        Sid       = "ListModelsPrefix"
        Effect    = "Allow"
        Action    = "s3:ListBucket"
        Resource  = "arn:aws:s3:::my-models"
        Condition = { StringLike = { "s3:prefix" = ["comfyui", "comfyui/*"] } }
      },
      {
        Sid      = "ReadModelsPrefix"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = "arn:aws:s3:::my-models/comfyui/*"
      },
    ]
    error_message = "models_s3_uri must grant read-only access to that prefix only."
  }

  assert {
    condition     = strcontains(aws_s3_object.settings.content, "MODELS_S3_URI='s3://my-models/comfyui/'\n")
    error_message = "The bootstrap must learn the models URI from settings.env."
  }
}

run "models_whole_bucket_and_ssh_without_key" {
  # A state of its own: a fresh instance, not an update of the previous run's.
  state_key = "models_whole_bucket_and_ssh_without_key"

  module {
    source = "./modules/instance"
  }

  variables {
    models_s3_uri     = "s3://my-models"
    ssh_allowed_cidrs = ["203.0.113.7/32"]
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.ssh) == 0
    error_message = "ssh_allowed_cidrs must not open SSH without a key pair."
  }

  assert {
    condition     = [for s in jsondecode(aws_iam_role_policy.instance.policy).Statement : s.Resource if startswith(s.Sid, "ReadModels")] == ["arn:aws:s3:::my-models/*"]
    error_message = "A bucket without a prefix grants read access to the bucket's objects."
  }

  assert {
    condition     = [for s in jsondecode(aws_iam_role_policy.instance.policy).Statement : lookup(s, "Condition", null) if s.Sid == "ListModelsPrefix"] == [null]
    error_message = "A bucket without a prefix needs no prefix condition."
  }
}

run "settings_values_are_shell_quoted" {
  # A state of its own: a fresh instance, not an update of the previous run's.
  state_key = "settings_values_are_shell_quoted"

  module {
    source = "./modules/instance"
  }

  variables {
    agent_settings = {
      QUOTED = "it's $(not) run"
    }
  }

  assert {
    condition     = strcontains(aws_s3_object.settings.content, "QUOTED='it'\\''s $(not) run'\n")
    error_message = "Values in settings.env must be single-quoted with embedded quotes escaped, so sourcing it runs nothing."
  }
}

run "no_url_while_the_instance_has_no_address" {
  state_key = "stopped"

  module {
    source = "./modules/instance"
  }

  override_resource {
    target = aws_instance.gpu
    values = {
      id        = "i-0123456789abcdef0"
      arn       = "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"
      public_ip = ""
    }
  }

  assert {
    condition     = output.public_ip == null && output.comfyui_url == null
    error_message = "A stopped instance has no address: no URL rather than http://:8188."
  }
}

# The root volume key. An instance created before the key was named (here: with aws/ebs) must keep
# its disk when a customer key is named later: kms_key_id forces a new instance in AWS, so the plan
# must leave it as it is (ignore_changes). The mock provider plans no replacement by itself, so the
# assertion is on the planned key: without the ignore_changes entry the plan carries the new key.
run "root_volume_key_existing_stack_apply" {
  state_key = "ebs_key"

  module {
    source = "./modules/instance"
  }

  assert {
    condition     = aws_instance.gpu.root_block_device[0].kms_key_id == "arn:aws:kms:us-east-1:123456789012:key/eeeeeeee-0000-4000-8000-000000000ebs"
    error_message = "A new instance's root volume must be encrypted with the AWS-managed aws/ebs key by default."
  }
}

run "root_volume_key_later_never_replaces_the_instance" {
  command   = plan
  state_key = "ebs_key"

  module {
    source = "./modules/instance"
  }

  variables {
    ebs_kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/cccccccc-1111-4222-8333-444444444444"
  }

  assert {
    condition     = aws_instance.gpu.root_block_device[0].kms_key_id == "arn:aws:kms:us-east-1:123456789012:key/eeeeeeee-0000-4000-8000-000000000ebs" && aws_instance.gpu.id == run.root_volume_key_existing_stack_apply.instance_id
    error_message = "Naming a key later must leave the existing instance and its disk as they are (kms_key_id forces a replacement)."
  }
}

run "root_volume_customer_key_for_a_new_instance" {
  command   = plan
  state_key = "ebs_customer_key"

  module {
    source = "./modules/instance"
  }

  variables {
    ebs_kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/cccccccc-1111-4222-8333-444444444444"
  }

  assert {
    condition     = aws_instance.gpu.root_block_device[0].kms_key_id == "arn:aws:kms:us-east-1:123456789012:key/cccccccc-1111-4222-8333-444444444444"
    error_message = "A new instance's root volume must use ebs_kms_key_arn when it is set."
  }
}

# A spot instance cannot change type: a new instance_type for it is refused at plan time.
run "spot_type_change_apply" {
  state_key = "spot_type"

  module {
    source = "./modules/instance"
  }

  variables {
    market = "spot"
  }
}

run "spot_type_change_is_refused" {
  command   = plan
  state_key = "spot_type"

  module {
    source = "./modules/instance"
  }

  variables {
    market        = "spot"
    instance_type = "g5.xlarge"
  }

  expect_failures = [aws_instance.gpu]
}

run "refuses_spot_with_fallback_types" {
  command   = plan
  state_key = "spot_fallbacks"

  module {
    source = "./modules/instance"
  }

  variables {
    market                  = "spot"
    fallback_instance_types = ["g5.xlarge"]
  }

  expect_failures = [var.fallback_instance_types]
}

# Values AWS would refuse only at apply time: a root volume below the AMI's snapshot (75 GiB in
# the mock), a type or fallback type the instance's zone does not offer.
run "refuses_root_volume_below_the_ami_snapshot" {
  command   = plan
  state_key = "small_volume"

  module {
    source = "./modules/instance"
  }

  variables {
    root_volume_size_gb = 50
  }

  expect_failures = [aws_instance.gpu]
}

run "accepts_root_volume_equal_to_the_ami_snapshot" {
  command   = plan
  state_key = "equal_volume"

  module {
    source = "./modules/instance"
  }

  variables {
    root_volume_size_gb = 75
  }
}

run "refuses_a_fallback_type_the_zone_does_not_offer" {
  command   = plan
  state_key = "not_offered"

  module {
    source = "./modules/instance"
  }

  variables {
    fallback_instance_types = ["g5.xlarge", "p5.48xlarge"]
  }

  expect_failures = [aws_instance.gpu]
}

run "refuses_an_instance_type_the_subnet_zone_does_not_offer" {
  command   = plan
  state_key = "not_offered_subnet"

  module {
    source = "./modules/instance"
  }

  variables {
    subnet_id = "subnet-0123456789abcdef0"
  }

  override_data {
    target = data.aws_ec2_instance_type_offerings.zone
    values = { instance_types = ["g5.xlarge"], locations = ["us-east-1c"] }
  }

  expect_failures = [aws_instance.gpu]
}
