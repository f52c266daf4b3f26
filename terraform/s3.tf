# The run bucket: every run folder lives under runs/<execution name>/.

resource "aws_s3_bucket" "runs" {
  # checkov:skip=CKV_AWS_18: access logging needs a separate log bucket the user owns; object access is in CloudTrail data events if enabled
  # checkov:skip=CKV_AWS_144: cross-region replication is a disaster-recovery choice, not a default; runs can be re-created from the spec
  # checkov:skip=CKV2_AWS_62: nothing consumes bucket events; the state machine is the orchestrator
  bucket        = local.bucket_name
  force_destroy = var.force_delete
}

resource "aws_s3_bucket_versioning" "runs" {
  bucket = aws_s3_bucket.runs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "runs" {
  # checkov:skip=CKV_AWS_145: KMS is optional (var.kms_key_arn); without it objects are encrypted with SSE-S3
  bucket = aws_s3_bucket.runs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = local.use_kms ? "aws:kms" : "AES256"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = local.use_kms
  }
}

resource "aws_s3_bucket_public_access_block" "runs" {
  bucket                  = aws_s3_bucket.runs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "runs" {
  bucket = aws_s3_bucket.runs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

data "aws_iam_policy_document" "runs_bucket" {
  statement {
    sid     = "DenyRequestsWithoutTls"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.runs.arn,
      "${aws_s3_bucket.runs.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "runs" {
  bucket = aws_s3_bucket.runs.id
  policy = data.aws_iam_policy_document.runs_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.runs]
}

resource "aws_s3_bucket_lifecycle_configuration" "runs" {
  bucket = aws_s3_bucket.runs.id

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  rule {
    id     = "expire-old-runs"
    status = var.run_retention_days == null ? "Disabled" : "Enabled"
    filter {
      prefix = "${local.runs_prefix}/"
    }
    expiration {
      days = coalesce(var.run_retention_days, 36500)
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
  }

  depends_on = [aws_s3_bucket_versioning.runs]
}
