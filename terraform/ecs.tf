# The ECS Fargate cluster and one task definition per ECS stage (extract, querygen, register).
# The state machine starts them with `run --spec <uri> --run-dir <uri>` as the container command;
# the image's ENTRYPOINT is the stage's click command.

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
