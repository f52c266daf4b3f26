output "region" {
  description = "Region of the stack (used by `make push-images`)."
  value       = local.region
}

output "name_prefix" {
  description = "Prefix of the resource names; the ECR repositories are <name_prefix>/<image>."
  value       = var.name_prefix
}

output "state_machine_arn" {
  description = "ARN of the pipeline state machine; start an execution with a run spec as input."
  value       = aws_sfn_state_machine.pipeline.arn
}

output "run_bucket" {
  description = "Bucket holding every run folder, at s3://<bucket>/runs/<execution name>/."
  value       = aws_s3_bucket.runs.bucket
}

output "ecr_registry" {
  description = "ECR registry host to log in to before pushing images."
  value       = split("/", aws_ecr_repository.image["trainer"].repository_url)[0]
}

output "ecr_repository_urls" {
  description = "ECR repository URL of each image (extractor, querygen, trainer, registrar)."
  value       = { for name, repo in aws_ecr_repository.image : name => repo.repository_url }
}

output "image_tag" {
  description = "Image tag the tasks and training jobs run."
  value       = var.image_tag
}

output "image_tag_mutability" {
  description = "ECR tag mutability; `make push-images` moves the latest tag only when MUTABLE."
  value       = var.image_tag_mutability
}

output "ecs_cluster_arn" {
  description = "ECS cluster the extract, querygen and register tasks run in."
  value       = aws_ecs_cluster.this.arn
}

output "sagemaker_execution_role_arn" {
  description = "Role of the training jobs and of the serving endpoint (deploy.sagemaker.execution_role_arn in the run spec)."
  value       = aws_iam_role.sagemaker.arn
}

output "bedrock_batch_role_arn" {
  description = "Service role of Bedrock batch inference jobs (querygen.bedrock.service_role_arn in the run spec)."
  value       = aws_iam_role.bedrock_batch.arn
}

output "opensearch_connector_role_arn" {
  description = "Role OpenSearch assumes to call the SageMaker endpoint (deploy.opensearch.connector_role_arn in the run spec); map it in the domain's ml_full_access backend roles if fine-grained access control is on."
  value       = aws_iam_role.opensearch_connector.arn
}

output "task_role_arns" {
  description = "Task role of each ECS stage; grant them access on your OpenSearch domain (fine-grained access control role mapping)."
  value       = { for name, role in aws_iam_role.task : name => role.arn }
}

output "log_groups" {
  description = "CloudWatch log groups of the ECS stages and of the state machine; SageMaker jobs log to /aws/sagemaker/TrainingJobs."
  value       = merge({ for name, group in aws_cloudwatch_log_group.stage : name => group.name }, { state_machine = aws_cloudwatch_log_group.state_machine.name })
}

output "start_execution_command" {
  description = "Example command that starts a run; the input is a run spec (the execution name names the run folder)."
  value       = "aws stepfunctions start-execution --region ${local.region} --state-machine-arn ${aws_sfn_state_machine.pipeline.arn} --name my-run-$(date +%Y%m%d-%H%M%S) --input file://terraform/examples/run-spec.json"
}
