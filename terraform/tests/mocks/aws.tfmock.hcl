# Shared mock values for the plan tests (terraform test, mock_provider "aws"). The provider still
# validates arguments at plan time, so ids and ARNs that flow into validated arguments must look
# real; everything else keeps the mock provider's generated values.

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
    arn        = "arn:aws:iam::123456789012:user/terraform"
    user_id    = "AIDAEXAMPLE"
  }
}

mock_data "aws_partition" {
  defaults = {
    partition          = "aws"
    dns_suffix         = "amazonaws.com"
    reverse_dns_prefix = "com.amazonaws"
  }
}

mock_data "aws_ssm_parameter" {
  defaults = {
    insecure_value = "ami-0123456789abcdef0"
    value          = "ami-0123456789abcdef0"
  }
}

# Every zone offers the types the tests use (zone selection and the instance's offering check).
mock_data "aws_ec2_instance_type_offerings" {
  defaults = {
    locations      = ["us-east-1b", "us-east-1a"]
    instance_types = ["g4dn.xlarge", "g5.xlarge", "g6.xlarge", "g4dn.2xlarge"]
  }
}

# The resolved AMI: a 75 GiB root snapshot, as the Deep Learning Base AMIs have.
mock_data "aws_ami" {
  defaults = {
    root_device_name = "/dev/sda1"
    block_device_mappings = [
      {
        device_name  = "/dev/sda1"
        ebs          = { volume_size = "75", snapshot_id = "snap-0123456789abcdef0", volume_type = "gp3" }
        no_device    = ""
        virtual_name = ""
      },
    ]
  }
}

# The AWS-managed aws/ebs key.
mock_data "aws_kms_key" {
  defaults = {
    arn = "arn:aws:kms:us-east-1:123456789012:key/eeeeeeee-0000-4000-8000-000000000ebs"
    id  = "eeeeeeee-0000-4000-8000-000000000ebs"
  }
}

mock_data "aws_default_tags" {
  defaults = {
    tags = { Project = "gpu-autostop" }
  }
}

mock_data "aws_subnet" {
  defaults = {
    vpc_id = "vpc-0123456789abcdef0"
  }
}

mock_resource "aws_kms_key" {
  defaults = {
    arn    = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    key_id = "11111111-2222-3333-4444-555555555555"
  }
}

mock_resource "aws_instance" {
  defaults = {
    id        = "i-0123456789abcdef0"
    arn       = "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"
    public_ip = "198.51.100.10"
  }
}

mock_resource "aws_eip" {
  defaults = {
    public_ip = "198.51.100.20"
  }
}

mock_resource "aws_vpc" {
  defaults = {
    id = "vpc-0123456789abcdef0"
  }
}

mock_resource "aws_subnet" {
  defaults = {
    id = "subnet-0123456789abcdef0"
  }
}

mock_resource "aws_security_group" {
  defaults = {
    id = "sg-0123456789abcdef0"
  }
}

mock_resource "aws_s3_bucket" {
  defaults = {
    id     = "gpu-autostop-boot-20260101000000000000000001"
    bucket = "gpu-autostop-boot-20260101000000000000000001"
    arn    = "arn:aws:s3:::gpu-autostop-boot-20260101000000000000000001"
  }
}

mock_resource "aws_iam_role" {
  defaults = {
    arn = "arn:aws:iam::123456789012:role/mock-role"
  }
}

mock_resource "aws_iam_policy" {
  defaults = {
    arn = "arn:aws:iam::123456789012:policy/mock-policy"
  }
}

mock_resource "aws_iam_instance_profile" {
  defaults = {
    arn = "arn:aws:iam::123456789012:instance-profile/mock-profile"
  }
}

mock_resource "aws_ssm_parameter" {
  defaults = {
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/gpu-autostop/mock"
  }
}

mock_resource "aws_sqs_queue" {
  defaults = {
    arn = "arn:aws:sqs:us-east-1:123456789012:gpu-autostop-dlq"
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/gpu-autostop-dlq"
  }
}

mock_resource "aws_sns_topic" {
  defaults = {
    arn = "arn:aws:sns:us-east-1:123456789012:gpu-autostop-alerts"
  }
}

mock_resource "aws_lambda_function" {
  defaults = {
    arn        = "arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-mock"
    invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:gpu-autostop-mock/invocations"
  }
}

mock_resource "aws_cloudwatch_event_rule" {
  defaults = {
    arn = "arn:aws:events:us-east-1:123456789012:rule/gpu-autostop-stop-recheck"
  }
}

mock_resource "aws_cloudwatch_metric_alarm" {
  defaults = {
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:gpu-autostop-mock"
  }
}

mock_resource "aws_cloudwatch_composite_alarm" {
  defaults = {
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:gpu-autostop-idle"
  }
}
