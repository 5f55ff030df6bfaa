terraform {
  # 1.9: cross-variable references in validation blocks; 1.7+: mock providers in `terraform test`.
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0, < 6.0.0"
    }
  }

  # Remote state is off by default (local terraform.tfstate, gitignored). To keep state in S3 with
  # native locking, uncomment this block, fill it in and run `make tf-init` again (see README.md).
  # backend "s3" {
  #   bucket       = "my-terraform-state-bucket"
  #   key          = "gpu-autostop/terraform.tfstate"
  #   region       = "us-east-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}
