# CloudWatch log groups: one per ECS stage, the SageMaker jobs' own groups are created by SageMaker
# (/aws/sagemaker/TrainingJobs), and one for the state machine's execution history.

resource "aws_cloudwatch_log_group" "stage" {
  for_each = local.ecs_stages

  name              = "/${var.name_prefix}/ecs/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_cloudwatch_log_group" "state_machine" {
  # The /aws/vendedlogs/ prefix keeps the resource policy Step Functions needs small.
  name              = "/aws/vendedlogs/states/${local.state_machine_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}
