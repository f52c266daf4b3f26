# IAM, least privilege, one role per job:
#   task_execution        ECS agent: pull the stage images, write the stage logs
#   task["extract"]       read the run bucket and sources, read the named OpenSearch indices
#                         (also the role of the cost guard, `osft estimate --enforce`)
#   task["querygen"]      Bedrock invoke and batch jobs, PassRole for the batch service role only
#   task["register"]      SageMaker endpoint APIs, OpenSearch ML Commons HTTP, PassRole for the
#                         SageMaker execution and connector roles
#   sagemaker             the training jobs (train, evaluate) and the serving endpoint
#   bedrock_batch         assumed by Bedrock batch inference to read and write its staging files
#   opensearch_connector  assumed by OpenSearch to call the SageMaker endpoint
#   step_functions        the state machine: run the tasks and jobs, read/write its own run files
# No statement grants `*` actions; data access is scoped to the run bucket's runs/ prefix and the
# resources named in the variables.

locals {
  runs_objects_arn = "${local.bucket_arn}/${local.runs_prefix}/*"
  # Bucket-level ARNs of source_s3_arns (for ListBucket) and their object ARNs (for GetObject).
  source_bucket_arns = distinct([for a in var.source_s3_arns : regex("^(arn:[^:]+:s3:::[^/]+)", a)[0]])
  source_object_arns = distinct([for a in var.source_s3_arns : length(split("/", a)) > 1 ? a : "${a}/*"])

  sagemaker_name     = lower(var.sagemaker_name_prefix)
  sagemaker_models   = "${local.sagemaker_arn_base}:model/${local.sagemaker_name}*"
  sagemaker_configs  = "${local.sagemaker_arn_base}:endpoint-config/${local.sagemaker_name}*"
  sagemaker_endpoint = "${local.sagemaker_arn_base}:endpoint/${local.sagemaker_name}*"

  bedrock_model_arns = flatten([for id in var.bedrock_model_ids : [
    "arn:${local.partition}:bedrock:*::foundation-model/${id}",
    "arn:${local.partition}:bedrock:${local.region}:${local.account_id}:inference-profile/*.${id}",
  ]])
  bedrock_jobs_arn = "arn:${local.partition}:bedrock:${local.region}:${local.account_id}:model-invocation-job/*"

  source_index_arns = var.source_opensearch_domain_arn == null ? [] : flatten([
    for index in var.source_opensearch_indices : ["${var.source_opensearch_domain_arn}/${index}", "${var.source_opensearch_domain_arn}/${index}/*"]
  ])

  # Confused-deputy guard: the service may assume the role only for these resources.
  trust_source_arns = {
    bedrock = local.bedrock_jobs_arn
    states  = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.state_machine_name}"
  }

  trusted_services = {
    ecs_tasks  = "ecs-tasks.amazonaws.com"
    sagemaker  = "sagemaker.amazonaws.com"
    bedrock    = "bedrock.amazonaws.com"
    opensearch = "opensearchservice.amazonaws.com"
    states     = "states.amazonaws.com"
  }
}

# --- trust policies: each service may assume its role only on behalf of this account ----------

data "aws_iam_policy_document" "trust" {
  for_each = local.trusted_services

  statement {
    sid     = "Allow${replace(title(replace(each.key, "_", " ")), " ", "")}ToAssume"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [each.value]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    dynamic "condition" {
      for_each = contains(keys(local.trust_source_arns), each.key) ? [local.trust_source_arns[each.key]] : []
      content {
        test     = "ArnLike"
        variable = "aws:SourceArn"
        values   = [condition.value]
      }
    }
  }
}

# --- statements several roles share ------------------------------------------------------------

data "aws_iam_policy_document" "run_bucket_rw" {
  statement {
    sid       = "ListRunFolders"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.runs_prefix}/*"]
    }
  }
  statement {
    sid       = "ReadWriteRunFolders"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = [local.runs_objects_arn]
  }
  dynamic "statement" {
    for_each = length(var.source_s3_arns) > 0 ? [1] : []
    content {
      sid       = "ListSourceBuckets"
      actions   = ["s3:ListBucket"]
      resources = local.source_bucket_arns
    }
  }
  dynamic "statement" {
    for_each = length(var.source_s3_arns) > 0 ? [1] : []
    content {
      sid       = "ReadSourceObjects"
      actions   = ["s3:GetObject"]
      resources = local.source_object_arns
    }
  }
  dynamic "statement" {
    for_each = local.kms_key_ids
    content {
      sid       = "UseTheRunKmsKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

data "aws_iam_policy_document" "read_secrets" {
  dynamic "statement" {
    for_each = length(var.secret_arns) > 0 ? [1] : []
    content {
      sid       = "ReadOpenSearchPasswords"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = var.secret_arns
    }
  }
}

# --- ECS task execution role ------------------------------------------------------------------

resource "aws_iam_role" "task_execution" {
  name               = "${var.name_prefix}-task-execution"
  assume_role_policy = data.aws_iam_policy_document.trust["ecs_tasks"].json
}

data "aws_iam_policy_document" "task_execution" {
  statement {
    sid       = "EcrLoginHasNoResourceLevelPermissions"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "PullTheStageImages"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [for name, stage in local.ecs_stages : aws_ecr_repository.image[stage.image].arn]
  }
  statement {
    sid       = "WriteTheStageLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in aws_cloudwatch_log_group.stage : "${group.arn}:*"]
  }
  dynamic "statement" {
    for_each = local.kms_key_ids
    content {
      sid       = "DecryptImagesAndLogs"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "task_execution" {
  name   = "pull-images-write-logs"
  role   = aws_iam_role.task_execution.id
  policy = data.aws_iam_policy_document.task_execution.json
}

# --- ECS task roles, one per stage ------------------------------------------------------------

resource "aws_iam_role" "task" {
  for_each = local.ecs_stages

  name               = "${var.name_prefix}-${each.key}-task"
  assume_role_policy = data.aws_iam_policy_document.trust["ecs_tasks"].json
}

data "aws_iam_policy_document" "extract" {
  source_policy_documents = [data.aws_iam_policy_document.run_bucket_rw.json, data.aws_iam_policy_document.read_secrets.json]

  dynamic "statement" {
    for_each = length(local.source_index_arns) > 0 ? [1] : []
    content {
      sid       = "ReadTheNamedSourceIndices"
      actions   = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost"]
      resources = concat(local.source_index_arns, ["${var.source_opensearch_domain_arn}/"])
    }
  }
  dynamic "statement" {
    for_each = length(local.source_index_arns) > 0 ? [1] : []
    content {
      # Pages of a point in time are searched as POST /_search, with no index in the path.
      sid     = "ReadPointInTimePagesAndReleaseContexts"
      actions = ["es:ESHttpPost", "es:ESHttpDelete"]
      resources = [
        "${var.source_opensearch_domain_arn}/_search",
        "${var.source_opensearch_domain_arn}/_search/point_in_time",
        "${var.source_opensearch_domain_arn}/_search/point_in_time/*",
        "${var.source_opensearch_domain_arn}/_search/scroll",
        "${var.source_opensearch_domain_arn}/_search/scroll/*",
      ]
    }
  }
}

data "aws_iam_policy_document" "querygen" {
  source_policy_documents = [data.aws_iam_policy_document.run_bucket_rw.json]

  statement {
    sid       = "InvokeTheAllowedBedrockModels"
    actions   = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    resources = local.bedrock_model_arns
  }
  statement {
    sid       = "CreateBatchJobsOnTheAllowedModels"
    actions   = ["bedrock:CreateModelInvocationJob"]
    resources = concat([local.bedrock_jobs_arn], local.bedrock_model_arns)
  }
  statement {
    sid       = "FollowAndStopBatchJobs"
    actions   = ["bedrock:GetModelInvocationJob", "bedrock:StopModelInvocationJob"]
    resources = [local.bedrock_jobs_arn]
  }
  statement {
    sid       = "ListBatchJobsHasNoResourceLevelPermissions"
    actions   = ["bedrock:ListModelInvocationJobs"]
    resources = ["*"]
  }
  statement {
    sid       = "PassOnlyTheBatchServiceRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.bedrock_batch.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["bedrock.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "register" {
  source_policy_documents = [data.aws_iam_policy_document.run_bucket_rw.json, data.aws_iam_policy_document.read_secrets.json]

  statement {
    sid = "ManageTheServingEndpoint"
    actions = [
      "sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:DeleteModel",
      "sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig", "sagemaker:DeleteEndpointConfig",
      "sagemaker:CreateEndpoint", "sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DeleteEndpoint",
      "sagemaker:UpdateEndpointWeightsAndCapacities", "sagemaker:AddTags", "sagemaker:ListTags",
    ]
    resources = [local.sagemaker_models, local.sagemaker_configs, local.sagemaker_endpoint]
  }
  statement {
    # Finding endpoint configs a killed run left behind: List* take no resource ARN.
    sid       = "ListEndpointConfigsAndEndpoints"
    actions   = ["sagemaker:ListEndpointConfigs", "sagemaker:ListEndpoints"]
    resources = ["*"]
  }
  statement {
    # Read-only: which configs and models every endpoint serves, so that none in use is deleted.
    sid       = "ReadWhatEveryEndpointServes"
    actions   = ["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig"]
    resources = ["${local.sagemaker_arn_base}:endpoint/*", "${local.sagemaker_arn_base}:endpoint-config/*"]
  }
  statement {
    sid       = "SmokeTestTheEndpoint"
    actions   = ["sagemaker:InvokeEndpoint"]
    resources = [local.sagemaker_endpoint]
  }
  statement {
    sid       = "PassTheModelExecutionRoleToSageMaker"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.sagemaker.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }
  statement {
    # OpenSearch checks that the caller may pass the role named in a SigV4 connector.
    sid       = "PassTheConnectorRoleToOpenSearch"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.opensearch_connector.arn]
  }
  dynamic "statement" {
    for_each = var.register_opensearch_domain_arn == null ? [] : [var.register_opensearch_domain_arn]
    content {
      sid     = "CallMlCommonsOnTheTargetDomain"
      actions = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete"]
      # The optional search check (deploy.opensearch.search_check) adds an ingest pipeline and an index named
      # osft-smoke-test by default, indexes the smoke texts and runs a neural query on them; the optional
      # hybrid search (deploy.opensearch.hybrid_search) reads and writes a search pipeline.
      resources = [
        "${statement.value}/",
        "${statement.value}/_plugins/_ml/*",
        "${statement.value}/_cluster/settings",
        "${statement.value}/_ingest/pipeline/*",
        "${statement.value}/_search/pipeline/*",
        "${statement.value}/osft-smoke-test",
        "${statement.value}/osft-smoke-test/*",
      ]
    }
  }
}

locals {
  task_policies = {
    extract  = data.aws_iam_policy_document.extract.json
    querygen = data.aws_iam_policy_document.querygen.json
    register = data.aws_iam_policy_document.register.json
  }
}

resource "aws_iam_role_policy" "task" {
  for_each = local.ecs_stages

  name   = "${each.key}-stage"
  role   = aws_iam_role.task[each.key].id
  policy = local.task_policies[each.key]
}

# --- SageMaker execution role (training jobs for train and evaluate, the serving endpoint) -----

resource "aws_iam_role" "sagemaker" {
  name               = "${var.name_prefix}-sagemaker"
  assume_role_policy = data.aws_iam_policy_document.trust["sagemaker"].json
}

data "aws_iam_policy_document" "sagemaker" {
  source_policy_documents = [data.aws_iam_policy_document.run_bucket_rw.json]

  statement {
    sid       = "EcrLoginHasNoResourceLevelPermissions"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "PullTheTrainerImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [aws_ecr_repository.image["trainer"].arn]
  }
  statement {
    sid     = "WriteTrainingAndEndpointLogs"
    actions = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/sagemaker/TrainingJobs:*",
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/sagemaker/Endpoints/*",
    ]
  }
  dynamic "statement" {
    for_each = local.kms_key_ids
    content {
      # The training jobs name the key in OutputDataConfig.KmsKeyId; SageMaker then needs kms:Encrypt
      # (CreateTrainingJob API reference, OutputDataConfig) besides the run bucket's Decrypt/GenerateDataKey.
      sid       = "EncryptModelArtifactsWithTheRunKmsKey"
      actions   = ["kms:Encrypt"]
      resources = [statement.value]
    }
  }
  statement {
    sid       = "PublishSageMakerMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringLike"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/*"]
    }
  }
}

resource "aws_iam_role_policy" "sagemaker" {
  name   = "train-evaluate-serve"
  role   = aws_iam_role.sagemaker.id
  policy = data.aws_iam_policy_document.sagemaker.json
}

# --- Bedrock batch inference service role -----------------------------------------------------

resource "aws_iam_role" "bedrock_batch" {
  name               = "${var.name_prefix}-bedrock-batch"
  assume_role_policy = data.aws_iam_policy_document.trust["bedrock"].json
}

data "aws_iam_policy_document" "bedrock_batch" {
  statement {
    sid       = "ListBatchStagingFolders"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.runs_prefix}/*"]
    }
  }
  statement {
    sid       = "ReadBatchInputWriteBatchOutput"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = [local.runs_objects_arn]
  }
  dynamic "statement" {
    for_each = local.kms_key_ids
    content {
      sid       = "UseTheRunKmsKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "bedrock_batch" {
  name   = "batch-staging"
  role   = aws_iam_role.bedrock_batch.id
  policy = data.aws_iam_policy_document.bedrock_batch.json
}

# --- the role OpenSearch assumes to call the SageMaker endpoint (ML Commons connector) --------

resource "aws_iam_role" "opensearch_connector" {
  name               = "${var.name_prefix}-opensearch-connector"
  assume_role_policy = data.aws_iam_policy_document.trust["opensearch"].json
}

data "aws_iam_policy_document" "opensearch_connector" {
  statement {
    sid       = "InvokeTheOsftEndpoints"
    actions   = ["sagemaker:InvokeEndpoint"]
    resources = [local.sagemaker_endpoint]
  }
}

resource "aws_iam_role_policy" "opensearch_connector" {
  name   = "invoke-endpoint"
  role   = aws_iam_role.opensearch_connector.id
  policy = data.aws_iam_policy_document.opensearch_connector.json
}

# --- Step Functions role ----------------------------------------------------------------------

resource "aws_iam_role" "step_functions" {
  name               = "${var.name_prefix}-step-functions"
  assume_role_policy = data.aws_iam_policy_document.trust["states"].json
}

data "aws_iam_policy_document" "step_functions" {
  statement {
    sid       = "RunTheStageTasks"
    actions   = ["ecs:RunTask"]
    resources = [for td in values(aws_ecs_task_definition.task) : "${td.arn_without_revision}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this.arn]
    }
  }
  statement {
    sid       = "FollowAndStopTheStageTasks"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${aws_ecs_cluster.this.name}/*"]
  }
  statement {
    sid       = "TagTheStageTasks"
    actions   = ["ecs:TagResource"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${aws_ecs_cluster.this.name}/*"]
    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask"]
    }
  }
  statement {
    sid       = "PassTheTaskRolesToEcs"
    actions   = ["iam:PassRole"]
    resources = concat([aws_iam_role.task_execution.arn], [for role in aws_iam_role.task : role.arn])
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
  statement {
    # AddTags: the .sync integration tags the job it starts (MANAGED_BY_AWS). ListTags: in Step Functions'
    # own IAM policy for CreateTrainingJob (there on "*"; here on the jobs this stack names).
    sid       = "RunTheTrainingJobs"
    actions   = ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob", "sagemaker:AddTags", "sagemaker:ListTags"]
    resources = ["${local.sagemaker_arn_base}:training-job/${var.name_prefix}-*"]
  }
  statement {
    sid       = "PassTheExecutionRoleToSageMaker"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.sagemaker.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }
  statement {
    sid     = "ManagedRulesForSyncIntegrations"
    actions = ["events:PutTargets", "events:PutRule", "events:DescribeRule"]
    resources = [
      "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/StepFunctionsGetEventsForECSTaskRule",
      "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule",
    ]
  }
  statement {
    sid       = "WriteSpecAndErrorOfARun"
    actions   = ["s3:PutObject"]
    resources = ["${local.runs_objects_arn}/spec.json", "${local.runs_objects_arn}/error.json"]
  }
  statement {
    sid       = "ReadGateAndRegistrationOfARun"
    actions   = ["s3:GetObject"]
    resources = ["${local.runs_objects_arn}/evaluate/gate.json", "${local.runs_objects_arn}/register/manifest.json"]
  }
  dynamic "statement" {
    for_each = local.kms_key_ids
    content {
      sid       = "UseTheRunKmsKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

data "aws_iam_policy_document" "step_functions_delivery" {
  # checkov:skip=CKV_AWS_111: CloudWatch Logs delivery and X-Ray actions have no resource-level permissions (Step Functions logging guide)
  # checkov:skip=CKV_AWS_356: same: these actions accept only Resource "*"
  statement {
    sid = "DeliverExecutionLogsHasNoResourceLevelPermissions"
    actions = [
      "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }
  statement {
    sid       = "SendTracesHasNoResourceLevelPermissions"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "step_functions" {
  name   = "orchestrate-pipeline"
  role   = aws_iam_role.step_functions.id
  policy = data.aws_iam_policy_document.step_functions.json
}

resource "aws_iam_role_policy" "step_functions_delivery" {
  name   = "logs-and-traces"
  role   = aws_iam_role.step_functions.id
  policy = data.aws_iam_policy_document.step_functions_delivery.json
}
