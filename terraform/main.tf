# Shared lookups and names. Resources live in files by concern: ecr.tf, s3.tf, logs.tf, ecs.tf,
# iam.tf, sfn.tf.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # One image per package under images/; the trainer image also runs evaluate and serve.
  images = toset(["extractor", "querygen", "trainer", "registrar"])

  # The stages that run as ECS Fargate tasks: container name = console script = stage name.
  ecs_stages = {
    extract  = { image = "extractor" }
    querygen = { image = "querygen" }
    register = { image = "registrar" }
  }

  bucket_name = coalesce(var.bucket_name, "${var.name_prefix}-runs-${local.account_id}-${local.region}")
  bucket_arn  = "arn:${local.partition}:s3:::${local.bucket_name}"
  runs_prefix = "runs"

  image_uris  = { for name in local.images : name => "${aws_ecr_repository.image[name].repository_url}:${var.image_tag}" }
  use_kms     = var.kms_key_arn != null
  kms_key_ids = local.use_kms ? [var.kms_key_arn] : []

  # The trainer's serve-cpu target: what CPU endpoints (serverless, ml.m5, ml.c5) serve.
  serve_cpu_image_uri = "${local.image_uris["trainer"]}-cpu"

  sagemaker_arn_base = "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}"
  state_machine_name = "${var.name_prefix}-pipeline"
}
