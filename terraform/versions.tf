terraform {
  required_version = ">= 1.6, < 2.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.100.x only: the configuration is validated offline against 5.100.0 (see .terraformrc.offline).
      version = "~> 5.100.0"
    }
  }

  # No backend block: pass one at `terraform init -backend-config=...` or add a backend.tf of
  # your own (an S3 backend with locking is what a team wants). State stays local otherwise.
}
