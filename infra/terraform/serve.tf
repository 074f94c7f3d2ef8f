# Optional: the review app (`ragharness serve`) as an always-on ECS service over the same S3 run store.
# Off by default (serve_enabled = false). Read-only by default: its role may list and read the runs and nothing
# else, so the app serves viewers; with serve_read_only = false it may also append review records (labels, votes:
# one object each under <run>/reviews/) and write the pinned-baseline file. API keys are created by an admin with
# `ragharness keys create --store s3://...` from their own credentials; the service only reads them.
# Put it behind your HTTPS load balancer (serve_target_group_arn); it listens on 8321 inside the VPC.

variable "serve_enabled" {
  description = "Run the review app as an ECS service."
  type        = bool
  default     = false
}

variable "serve_read_only" {
  description = "Viewers only: no labels, votes or pins (the role cannot write to the bucket)."
  type        = bool
  default     = true
}

variable "serve_host_name" {
  description = "Host name people reach the app by (the load balancer's); requests naming another host are refused."
  type        = string
  default     = "ragharness.internal.example"
}

variable "serve_target_group_arn" {
  description = "Target group of your HTTPS load balancer ('' for none)."
  type        = string
  default     = ""
}

locals {
  serve_count = var.serve_enabled ? 1 : 0
  serve_command = concat(
    ["ragharness", "serve", "--store", "s3://${aws_s3_bucket.runs.bucket}/${local.runs_prefix}", "--host", "0.0.0.0",
    "--port", "8321", "--allowed-host", var.serve_host_name, "--secure-cookies"],
    var.serve_read_only ? ["--read-only"] : [],
  )
}

data "aws_iam_policy_document" "serve" {
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
    sid       = "ReadRuns"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.runs.arn}/${local.runs_prefix}/*"]
  }
  dynamic "statement" {
    for_each = var.serve_read_only ? [] : [1]
    content {
      sid     = "AppendReviewsAndPins"
      actions = ["s3:PutObject"]
      resources = [
        "${aws_s3_bucket.runs.arn}/${local.runs_prefix}/*/reviews/*",
        "${aws_s3_bucket.runs.arn}/${local.runs_prefix}/_store/baselines.json",
      ]
    }
  }
}

resource "aws_iam_role" "serve" {
  count              = local.serve_count
  name               = "${var.name}-serve"
  assume_role_policy = data.aws_iam_policy_document.task_assume.json
}

resource "aws_iam_role_policy" "serve" {
  count  = local.serve_count
  name   = "${var.name}-serve"
  role   = aws_iam_role.serve[0].id
  policy = data.aws_iam_policy_document.serve.json
}

resource "aws_ecs_task_definition" "serve" {
  count                    = local.serve_count
  family                   = "${var.name}-serve"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 1024
  memory                   = 4096
  task_role_arn            = aws_iam_role.serve[0].arn
  execution_role_arn       = aws_iam_role.execution.arn
  container_definitions = jsonencode([{
    name         = "ragharness-serve"
    image        = var.image
    essential    = true
    command      = local.serve_command
    portMappings = [{ containerPort = 8321, protocol = "tcp" }]
    environment  = [{ name = "AWS_REGION", value = data.aws_region.current.name }]
    healthCheck = {
      command  = ["CMD-SHELL", "python -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8321/healthz')\""]
      interval = 30
      timeout  = 5
      retries  = 3
    }
    logConfiguration = {
      logDriver = "awslogs"
      options   = merge(local.log_options, { awslogs-stream-prefix = "serve" })
    }
  }])
}

resource "aws_ecs_service" "serve" {
  count           = local.serve_count
  name            = "${var.name}-serve"
  cluster         = aws_ecs_cluster.nightly.id
  task_definition = aws_ecs_task_definition.serve[0].arn
  desired_count   = 1 # sessions live in the server's memory: one task (API keys work with any number)
  launch_type     = "FARGATE"
  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }
  dynamic "load_balancer" {
    for_each = var.serve_target_group_arn == "" ? [] : [1]
    content {
      target_group_arn = var.serve_target_group_arn
      container_name   = "ragharness-serve"
      container_port   = 8321
    }
  }
}

output "serve_command" {
  description = "What the review app's container runs."
  value       = local.serve_command
}
