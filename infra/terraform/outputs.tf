output "run_store" {
  description = "Set nightly.run_store in harness.yaml to this."
  value       = "s3://${aws_s3_bucket.runs.bucket}/${local.runs_prefix}"
}

output "task_role_arn" {
  value = aws_iam_role.task.arn
}

output "schedule_name" {
  value = aws_scheduler_schedule.nightly.name
}
