# A complete, minimal configuration: copy it, fill in your network and image tag, then
#   terraform -chdir=terraform apply -var-file=examples/example.tfvars
region      = "us-east-1"
name_prefix = "osft"

# Where the Fargate tasks run: private subnets with a NAT gateway (or VPC endpoints), and a
# security group that allows egress to AWS APIs and your OpenSearch domain.
subnet_ids         = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
security_group_ids = ["sg-0123456789abcdef0"]

# The git SHA `make push-images` printed.
image_tag = "0123456789ab"

# What the stages may read and call.
source_s3_arns                 = ["arn:aws:s3:::my-corpus-bucket/docs/*"]
source_opensearch_domain_arn   = "arn:aws:es:us-east-1:123456789012:domain/my-search"
source_opensearch_indices      = ["docs-*"]
register_opensearch_domain_arn = "arn:aws:es:us-east-1:123456789012:domain/my-search"
bedrock_model_ids              = ["anthropic.claude-haiku-4-5-20251001-v1:0"]

tags = { team = "search" }
