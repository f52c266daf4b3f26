provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ "osft:stack" = var.name_prefix, "osft:managed-by" = "terraform" }, var.tags)
  }
}
