# The ECS Fargate cluster and one task definition per ECS task: the stages (extract, querygen,
# register) and the cost guard (estimate). The state machine starts a stage with
# `run --spec <uri> --run-dir <uri>` as the container command; the image's ENTRYPOINT is the
# stage's click command.

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
    { name = "OSFT_SAGEMAKER_ROLE_ARN", value = aws_iam_role.sagemaker.arn },
    { name = "OSFT_BEDROCK_BATCH_ROLE_ARN", value = aws_iam_role.bedrock_batch.arn },
    { name = "OSFT_OPENSEARCH_CONNECTOR_ROLE_ARN", value = aws_iam_role.opensearch_connector.arn },
    { name = "OSFT_TRAINER_IMAGE_URI", value = local.image_uris["trainer"] },
    { name = "OSFT_SERVE_CPU_IMAGE_URI", value = local.serve_cpu_image_uri },
  ]

  # Each task runs as a stage (`runs_as`): that stage's role, log group and task size.
  # The cost guard runs `osft estimate --spec <uri> --run-dir <uri> --enforce` on the extractor
  # image after extract, before anything spends money. ECS container overrides cannot replace
  # the image's ENTRYPOINT (`extract`), so its task sets the entry point to `osft` (the
  # osft-common console script every image installs). It reads the spec and the run folder and
  # writes estimate.json there, as the extract stage may.
  ecs_tasks = merge(
    { for name, stage in local.ecs_stages : name => { image = stage.image, runs_as = name, entry_point = [] } },
    { estimate = { image = local.ecs_stages["extract"].image, runs_as = "extract", entry_point = ["osft"] } },
  )
}

resource "aws_ecs_task_definition" "task" {
  for_each = local.ecs_tasks

  family                   = "${var.name_prefix}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.stage_resources[each.value.runs_as].cpu
  memory                   = var.stage_resources[each.value.runs_as].memory
  execution_role_arn       = aws_iam_role.task_execution.arn
  task_role_arn            = aws_iam_role.task[each.value.runs_as].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  ephemeral_storage {
    size_in_gib = var.stage_resources[each.value.runs_as].ephemeral_storage_gib
  }

  # The root filesystem is read-only; tasks write their working files under /tmp.
  volume {
    name = "scratch"
  }

  container_definitions = jsonencode([
    merge(
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
            "awslogs-group"         = aws_cloudwatch_log_group.stage[each.value.runs_as].name
            "awslogs-region"        = local.region
            "awslogs-stream-prefix" = each.key
          }
        }
      },
      { for key, value in { entryPoint = each.value.entry_point } : key => value if length(value) > 0 },
    )
  ])
}

# Earlier versions had one resource for the stages and another for the cost guard.
moved {
  from = aws_ecs_task_definition.stage
  to   = aws_ecs_task_definition.task
}

moved {
  from = aws_ecs_task_definition.estimate
  to   = aws_ecs_task_definition.task["estimate"]
}
