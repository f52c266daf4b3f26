# --- naming and placement -------------------------------------------------------------------

variable "region" {
  description = "AWS region for every resource (ECR, ECS, S3, SageMaker jobs, Step Functions), e.g. us-east-1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (ECR repositories, cluster, roles, bucket, state machine). Lowercase, starts with a letter."
  type        = string
  default     = "osft"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name_prefix))
    error_message = "name_prefix must be 2-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags added to every resource (on top of osft:stack and osft:managed-by)."
  type        = map(string)
  default     = {}
}

# --- network (the ECS Fargate tasks run here) -----------------------------------------------

variable "subnet_ids" {
  description = "Subnets the Fargate tasks run in. Private subnets need a NAT gateway or VPC endpoints (ECR, S3, logs, Bedrock, SageMaker) to reach AWS APIs."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "subnet_ids must list at least one subnet id of the form subnet-0123abcd."
  }
}

variable "security_group_ids" {
  description = "Security groups of the Fargate tasks: egress to AWS APIs and your OpenSearch domain; no ingress is needed."
  type        = list(string)

  validation {
    condition     = length(var.security_group_ids) > 0 && alltrue([for s in var.security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", s))])
    error_message = "security_group_ids must list at least one security group id of the form sg-0123abcd."
  }
}

variable "assign_public_ip" {
  description = "Give Fargate tasks a public IP. Needed only in public subnets without a NAT gateway."
  type        = bool
  default     = false
}

# --- images ---------------------------------------------------------------------------------

variable "image_tag" {
  description = "Tag of the four stage images the tasks and training jobs run (`make push-images` pushes the git SHA, and <tag>-cpu of the trainer for CPU endpoints). Immutable tags make a run reproducible."
  type        = string

  validation {
    # 124, not Docker's 128: the trainer's CPU serving image is tagged <image_tag>-cpu.
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,123}$", var.image_tag))
    error_message = "image_tag must be a Docker tag of up to 124 letters, digits, '_', '.' or '-' (the trainer's CPU image adds '-cpu'), not starting with '.' or '-'."
  }
}

variable "image_tag_mutability" {
  description = "ECR tag mutability. IMMUTABLE (default) forbids moving a tag, so `make push-images` pushes only the SHA tag; MUTABLE also moves `latest`."
  type        = string
  default     = "IMMUTABLE"

  validation {
    condition     = contains(["IMMUTABLE", "MUTABLE"], var.image_tag_mutability)
    error_message = "image_tag_mutability must be IMMUTABLE or MUTABLE."
  }
}

variable "ecr_keep_images" {
  description = "Number of tagged images each ECR repository keeps; older ones are expired by the lifecycle policy. The trainer repository holds two per push (<tag> and <tag>-cpu)."
  type        = number
  default     = 30

  validation {
    condition     = var.ecr_keep_images >= 1 && var.ecr_keep_images <= 1000
    error_message = "ecr_keep_images must be between 1 and 1000."
  }
}

variable "force_delete" {
  description = "Let `terraform destroy` delete ECR repositories that hold images and the run bucket with its objects. Keep false in production."
  type        = bool
  default     = false
}

# --- storage, encryption and logs -----------------------------------------------------------

variable "bucket_name" {
  description = "Name of the run bucket. Null derives <name_prefix>-runs-<account id>-<region>."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name (3-63 lowercase letters, digits, '.' and '-')."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the run bucket, ECR, logs and SageMaker outputs. Null uses AWS-managed encryption (SSE-S3, AES256)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>) or null."
  }
}

variable "run_retention_days" {
  description = "Days after which objects under runs/ in the run bucket expire (noncurrent versions expire 30 days after that). Null keeps runs forever."
  type        = number
  default     = 180

  validation {
    condition     = var.run_retention_days == null || try(var.run_retention_days >= 1, false)
    error_message = "run_retention_days must be at least 1, or null."
  }
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups of the stages and the state machine."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, ...)."
  }
}

variable "state_machine_log_level" {
  description = "Execution history the state machine sends to CloudWatch Logs: ALL, ERROR, FATAL or OFF."
  type        = string
  default     = "ERROR"

  validation {
    condition     = contains(["ALL", "ERROR", "FATAL", "OFF"], var.state_machine_log_level)
    error_message = "state_machine_log_level must be ALL, ERROR, FATAL or OFF."
  }
}

# --- ECS task sizes -------------------------------------------------------------------------

variable "stage_resources" {
  description = "Fargate CPU units, memory (MiB) and ephemeral storage (GiB) per ECS stage. CPU/memory must be a Fargate combination."
  type = map(object({
    cpu                   = number
    memory                = number
    ephemeral_storage_gib = number
  }))
  default = {
    extract  = { cpu = 1024, memory = 4096, ephemeral_storage_gib = 50 }
    querygen = { cpu = 1024, memory = 4096, ephemeral_storage_gib = 30 }
    register = { cpu = 512, memory = 1024, ephemeral_storage_gib = 21 }
  }

  validation {
    condition     = length(setsubtract(["extract", "querygen", "register"], keys(var.stage_resources))) == 0
    error_message = "stage_resources must have entries for extract, querygen and register."
  }
  validation {
    condition = alltrue([for r in values(var.stage_resources) :
      contains([256, 512, 1024, 2048, 4096, 8192, 16384], r.cpu) && r.memory >= 512 && r.memory <= 122880
    ])
    error_message = "each cpu must be 256, 512, 1024, 2048, 4096, 8192 or 16384 and memory 512-122880 MiB (see the Fargate task size table)."
  }
  validation {
    condition     = alltrue([for r in values(var.stage_resources) : r.ephemeral_storage_gib >= 21 && r.ephemeral_storage_gib <= 200])
    error_message = "ephemeral_storage_gib must be between 21 and 200."
  }
}

# --- what the stages may read and call ------------------------------------------------------

variable "source_s3_arns" {
  description = "S3 locations outside the run bucket the stages may read (corpora, judged queries), as bucket ARNs or object-prefix ARNs ending in /*."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.source_s3_arns : can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", a))])
    error_message = "source_s3_arns must be S3 ARNs such as arn:aws:s3:::my-corpus or arn:aws:s3:::my-corpus/docs/*."
  }
}

variable "source_opensearch_domain_arn" {
  description = "Amazon OpenSearch Service domain the extractor reads (read-only HTTP on the named indices). Null: no OpenSearch source."
  type        = string
  default     = null

  validation {
    condition     = var.source_opensearch_domain_arn == null || can(regex("^arn:aws[a-z-]*:es:[a-z0-9-]+:[0-9]{12}:domain/[a-z][a-z0-9-]{2,27}$", var.source_opensearch_domain_arn))
    error_message = "source_opensearch_domain_arn must be a domain ARN (arn:aws:es:<region>:<account>:domain/<name>) or null."
  }
}

variable "source_opensearch_indices" {
  description = "Indices (or index patterns such as docs-*) of source_opensearch_domain_arn the extractor may read."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for i in var.source_opensearch_indices : can(regex("^[a-z0-9][a-z0-9_.*-]*$", i)) && i != "*"])
    error_message = "source_opensearch_indices must be index names or patterns (lowercase), and not the bare '*'."
  }
}

variable "register_opensearch_domain_arn" {
  description = "Amazon OpenSearch Service domain the registrar registers models in (ML Commons APIs only). Null: no registration in a managed domain."
  type        = string
  default     = null

  validation {
    condition     = var.register_opensearch_domain_arn == null || can(regex("^arn:aws[a-z-]*:es:[a-z0-9-]+:[0-9]{12}:domain/[a-z][a-z0-9-]{2,27}$", var.register_opensearch_domain_arn))
    error_message = "register_opensearch_domain_arn must be a domain ARN (arn:aws:es:<region>:<account>:domain/<name>) or null."
  }
}

variable "secret_arns" {
  description = "Secrets Manager secrets the extractor and registrar may read (basic-auth passwords named by password_secret_arn in the run spec)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.secret_arns : can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", a))])
    error_message = "secret_arns must be Secrets Manager secret ARNs."
  }
}

variable "bedrock_model_ids" {
  description = "Bedrock foundation model ids querygen may invoke, directly or through a cross-region inference profile (us./eu./apac. prefixed)."
  type        = list(string)
  default     = ["anthropic.claude-haiku-4-5-20251001-v1:0"]

  validation {
    condition     = length(var.bedrock_model_ids) > 0 && alltrue([for m in var.bedrock_model_ids : can(regex("^[a-z0-9-]+\\.[A-Za-z0-9.:-]+$", m))])
    error_message = "bedrock_model_ids must be foundation model ids such as anthropic.claude-haiku-4-5-20251001-v1:0 (no region prefix)."
  }
}

variable "sagemaker_name_prefix" {
  description = "Prefix that SageMaker models, endpoint configs and endpoints created by the registrar must carry; set deploy.sagemaker.endpoint_name to start with it. Empty allows any name in the account and region."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[a-zA-Z0-9-]{0,30}$", var.sagemaker_name_prefix))
    error_message = "sagemaker_name_prefix must be at most 30 letters, digits or hyphens."
  }
}
