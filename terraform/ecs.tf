# The ECS Fargate cluster and one task definition per ECS stage (extract, querygen, register).
# The state machine starts them with `run --spec <uri> --run-dir <uri>` as the container command;
# the image's ENTRYPOINT is the stage's click command. Plus the cost guard's task definition (below).

resource "aws_ecs_cluster" "this" {
  name = var.name_prefix

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

locals {
  # Defaults the stages fall back on when the run spec leaves the field unset.
  stage_environment = [
    { name = "OSFT_LOG_JSON", value = "1" },
    { name = "OSFT_PROGRESS", value = "0" },
    { name = "HOME", value = "/tmp" },
    { name = "OSFT_RUN_BUCKET", value = local.bucket_name },
    { name = "OSFT_SAGEMAKER_ROLE_ARN", value = aws_iam_role.sagemaker.arn },
    { name = "OSFT_BEDROCK_BATCH_ROLE_ARN", value = aws_iam_role.bedrock_batch.arn },
    { name = "OSFT_OPENSEARCH_CONNECTOR_ROLE_ARN", value = aws_iam_role.opensearch_connector.arn },
    { name = "OSFT_TRAINER_IMAGE_URI", value = local.image_uris["trainer"] },
  ]
}

resource "aws_ecs_task_definition" "stage" {
  for_each = local.ecs_stages

  family                   = "${var.name_prefix}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.stage_resources[each.key].cpu
  memory                   = var.stage_resources[each.key].memory
  execution_role_arn       = aws_iam_role.task_execution.arn
  task_role_arn            = aws_iam_role.task[each.key].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  ephemeral_storage {
    size_in_gib = var.stage_resources[each.key].ephemeral_storage_gib
  }

  # The root filesystem is read-only; stages write their working files under /tmp.
  volume {
    name = "scratch"
  }

  container_definitions = jsonencode([
    {
      name                   = each.key
      image                  = local.image_uris[each.value.image]
      essential              = true
      readonlyRootFilesystem = true
      environment            = local.stage_environment
      mountPoints            = [{ sourceVolume = "scratch", containerPath = "/tmp", readOnly = false }]
      linuxParameters        = { initProcessEnabled = true }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          "awslogs-group"         = aws_cloudwatch_log_group.stage[each.key].name
          "awslogs-region"        = local.region
          "awslogs-stream-prefix" = each.key
        }
      }
    }
  ])
}

# The cost guard: `osft estimate --spec <uri> --run-dir <uri> --enforce` on the extractor image,
# after extract and before anything spends money. ECS container overrides cannot replace the
# image's ENTRYPOINT (`extract`), so this task definition sets the entry point to `osft` (the
# osft-common console script every image installs). It runs as the extract stage: same role
# (reads the spec and the run folder, writes estimate.json there), log group and task size.
resource "aws_ecs_task_definition" "estimate" {
  family                   = "${var.name_prefix}-estimate"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.stage_resources["extract"].cpu
  memory                   = var.stage_resources["extract"].memory
  execution_role_arn       = aws_iam_role.task_execution.arn
  task_role_arn            = aws_iam_role.task["extract"].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  ephemeral_storage {
    size_in_gib = var.stage_resources["extract"].ephemeral_storage_gib
  }

  volume {
    name = "scratch"
  }

  container_definitions = jsonencode([
    {
      name                   = "estimate"
      image                  = local.image_uris[local.ecs_stages["extract"].image]
      entryPoint             = ["osft"]
      essential              = true
      readonlyRootFilesystem = true
      environment            = local.stage_environment
      mountPoints            = [{ sourceVolume = "scratch", containerPath = "/tmp", readOnly = false }]
      linuxParameters        = { initProcessEnabled = true }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          "awslogs-group"         = aws_cloudwatch_log_group.stage["extract"].name
          "awslogs-region"        = local.region
          "awslogs-stream-prefix" = "estimate"
        }
      }
    }
  ])
}
