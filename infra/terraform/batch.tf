# Batch inference for big runs (`mode: batch | auto` on candidates and the judge, `ingest --batch`): the service
# role Bedrock assumes to read the job input and write its output under one prefix of the runs bucket, and what the
# nightly task needs to create and follow jobs and to pass that role (to Bedrock only).

locals {
  batch_prefix = trimsuffix(var.batch_prefix, "/")
  batch_jobs   = "arn:aws:bedrock:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:model-invocation-job/*"
}

data "aws_iam_policy_document" "batch_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["bedrock.amazonaws.com"]
    }
    condition { # only batch jobs of this account may assume it (confused-deputy protection)
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.batch_jobs]
    }
  }
}

resource "aws_iam_role" "batch" {
  name               = "${var.name}-batch"
  assume_role_policy = data.aws_iam_policy_document.batch_assume.json
}

data "aws_iam_policy_document" "batch" {
  statement {
    sid       = "ListBatchPrefix"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.runs.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.batch_prefix}/*"]
    }
  }
  statement {
    sid       = "ReadInputWriteOutput"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.runs.arn}/${local.batch_prefix}/*"]
  }
}

resource "aws_iam_role_policy" "batch" {
  name   = "${var.name}-batch"
  role   = aws_iam_role.batch.id
  policy = data.aws_iam_policy_document.batch.json
}

data "aws_iam_policy_document" "task_batch" {
  # the same access to the batch prefix as the service role (upload input, list and download output), plus:
  source_policy_documents = [data.aws_iam_policy_document.batch.json]
  statement {
    sid       = "CreateBatchJobsOnConfiguredModels"
    actions   = ["bedrock:CreateModelInvocationJob"]
    resources = concat(var.bedrock_model_arns, [local.batch_jobs])
  }
  statement {
    sid       = "FollowAndStopBatchJobs"
    actions   = ["bedrock:GetModelInvocationJob", "bedrock:StopModelInvocationJob"]
    resources = [local.batch_jobs]
  }
  statement {
    # ListModelInvocationJobs has no resource-level permissions: it finds a job created just before a crash by
    # its name, so a resumed run never creates (and pays for) a second one.
    sid       = "FindBatchJobByName"
    actions   = ["bedrock:ListModelInvocationJobs"]
    resources = ["*"]
  }
  statement {
    sid       = "PassTheBatchRoleToBedrockOnly"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.batch.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["bedrock.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "task_batch" {
  name   = "${var.name}-task-batch"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task_batch.json
}

output "batch_role_arn" {
  description = "Set batch.bedrock.role_arn in harness.yaml to this (or to an environment reference holding it)."
  value       = aws_iam_role.batch.arn
}

output "batch_s3_uri" {
  description = "Set batch.bedrock.s3_uri in harness.yaml to this."
  value       = "s3://${aws_s3_bucket.runs.bucket}/${local.batch_prefix}"
}
