# The Step Functions state machine. Its definition is statemachine/pipeline.asl.json (Amazon
# States Language, JSONata); Terraform only fills in the ARNs and names below.

locals {
  state_machine_definition = templatefile("${path.module}/statemachine/pipeline.asl.json", {
    bucket                       = aws_s3_bucket.runs.bucket
    cluster_arn                  = aws_ecs_cluster.this.arn
    extract_task_definition_arn  = aws_ecs_task_definition.task["extract"].arn_without_revision
    estimate_task_definition_arn = aws_ecs_task_definition.task["estimate"].arn_without_revision
    querygen_task_definition_arn = aws_ecs_task_definition.task["querygen"].arn_without_revision
    register_task_definition_arn = aws_ecs_task_definition.task["register"].arn_without_revision
    subnet_ids                   = join(",", var.subnet_ids)
    security_group_ids           = join(",", var.security_group_ids)
    assign_public_ip             = var.assign_public_ip ? "ENABLED" : "DISABLED"
    trainer_image                = local.image_uris["trainer"]
    sagemaker_role_arn           = aws_iam_role.sagemaker.arn
    kms_key_arn                  = var.kms_key_arn == null ? "" : var.kms_key_arn
    name_prefix                  = var.name_prefix
  })
}

resource "aws_sfn_state_machine" "pipeline" {
  name     = local.state_machine_name
  role_arn = aws_iam_role.step_functions.arn
  type     = "STANDARD"
  # jsondecode fails the plan on a broken template instead of the apply.
  definition = jsonencode(jsondecode(local.state_machine_definition))

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    include_execution_data = true
    level                  = var.state_machine_log_level
  }

  tracing_configuration {
    enabled = true
  }

  dynamic "encryption_configuration" {
    for_each = local.kms_key_ids
    content {
      type                              = "CUSTOMER_MANAGED_KMS_KEY"
      kms_key_id                        = encryption_configuration.value
      kms_data_key_reuse_period_seconds = 300
    }
  }

  depends_on = [aws_iam_role_policy.step_functions, aws_iam_role_policy.step_functions_delivery]
}
