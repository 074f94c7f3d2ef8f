# The AWS side of the nightly evaluation: an S3 bucket for runs, a least-privilege role for Bedrock invoke and
# the bucket, and a scheduled ECS Fargate task that runs `ragharness nightly`.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.40" }
  }
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  runs_prefix = trimsuffix(var.runs_prefix, "/")
  log_options = { # where every task of the module logs; each adds its stream prefix
    awslogs-group  = aws_cloudwatch_log_group.nightly.name
    awslogs-region = data.aws_region.current.name
  }
}

# --- run store ----------------------------------------------------------------------------------------------
resource "aws_s3_bucket" "runs" {
  bucket        = var.bucket_name
  force_destroy = false
}

resource "aws_s3_bucket_versioning" "runs" {
  bucket = aws_s3_bucket.runs.id
  versioning_configuration { status = "Enabled" }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "runs" {
  bucket = aws_s3_bucket.runs.id
  rule {
    apply_server_side_encryption_by_default { sse_algorithm = "aws:kms" }
  }
}

resource "aws_s3_bucket_public_access_block" "runs" {
  bucket                  = aws_s3_bucket.runs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# --- least-privilege role for the task ----------------------------------------------------------------------
data "aws_iam_policy_document" "task_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.task_assume.json
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "InvokeConfiguredModels"
    actions   = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    resources = var.bedrock_model_arns
  }
  statement {
    sid       = "ApplyTheEvaluatedGuardrail" # the guardrail generated from the policy (guardrail.tf.json)
    actions   = ["bedrock:ApplyGuardrail"]
    resources = [aws_bedrock_guardrail.support_demo.guardrail_arn]
  }
  statement {
    sid       = "ListRunPrefix"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.runs.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.runs_prefix}/*"]
    }
  }
  statement {
    sid       = "ReadWriteRuns"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.runs.arn}/${local.runs_prefix}/*"]
  }
  statement {
    sid       = "ReadWebhookSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = var.webhook_secret_arn == "" ? ["arn:aws:secretsmanager:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:secret:none"] : [var.webhook_secret_arn]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "${var.name}-task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.task_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

# --- scheduled container task -------------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "nightly" {
  name              = "/ragharness/${var.name}"
  retention_in_days = 30
}

resource "aws_ecs_cluster" "nightly" {
  name = var.name
}

resource "aws_ecs_task_definition" "nightly" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 2048
  memory                   = 8192
  task_role_arn            = aws_iam_role.task.arn
  execution_role_arn       = aws_iam_role.execution.arn
  container_definitions = jsonencode([{
    name      = "ragharness"
    image     = var.image
    essential = true
    command   = ["ragharness", "nightly", var.config_path]
    environment = [
      { name = "AWS_REGION", value = data.aws_region.current.name },
      { name = "RAGHARNESS_RUN_STORE", value = "s3://${aws_s3_bucket.runs.bucket}/${local.runs_prefix}" },
    ]
    secrets = var.webhook_secret_arn == "" ? [] : [{ name = "NIGHTLY_WEBHOOK_URL", valueFrom = var.webhook_secret_arn }]
    logConfiguration = {
      logDriver = "awslogs"
      options   = merge(local.log_options, { awslogs-stream-prefix = "nightly" })
    }
  }])
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    actions   = ["ecs:RunTask"]
    resources = [aws_ecs_task_definition.nightly.arn_without_revision, "${aws_ecs_task_definition.nightly.arn_without_revision}:*"]
  }
  statement {
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.task.arn, aws_iam_role.execution.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${var.name}-scheduler"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule" "nightly" {
  name                = var.name
  schedule_expression = var.schedule
  flexible_time_window { mode = "OFF" }
  target {
    arn      = aws_ecs_cluster.nightly.arn
    role_arn = aws_iam_role.scheduler.arn
    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.nightly.arn
      launch_type         = "FARGATE"
      network_configuration {
        subnets          = var.subnet_ids
        security_groups  = var.security_group_ids
        assign_public_ip = false
      }
    }
  }
}
