variable "name" {
  description = "Name prefix for every resource."
  type        = string
  default     = "ragharness-nightly"
}

variable "bucket_name" {
  description = "S3 bucket for run directories."
  type        = string
}

variable "runs_prefix" {
  description = "Key prefix of the run store inside the bucket."
  type        = string
  default     = "ragharness/runs"
}

variable "bedrock_model_arns" {
  description = "Foundation-model and inference-profile ARNs the candidates and the judge may invoke (least privilege)."
  type        = list(string)
}

variable "image" {
  description = "Container image with ragharness and the evaluation config baked in."
  type        = string
}

variable "config_path" {
  description = "harness.yaml path inside the image."
  type        = string
  default     = "goldsets/support/harness.yaml"
}

variable "schedule" {
  description = "EventBridge Scheduler expression."
  type        = string
  default     = "cron(17 2 * * ? *)"
}

variable "subnet_ids" {
  description = "Private subnets for the task (with a route to Bedrock and S3, e.g. VPC endpoints or NAT)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups for the task (egress only)."
  type        = list(string)
}

variable "webhook_secret_arn" {
  description = "Secrets Manager ARN holding the notification webhook URL ('' for none)."
  type        = string
  default     = ""
}

variable "batch_prefix" {
  description = "Key prefix (in the runs bucket) for batch inference input and output: batch.bedrock.s3_uri."
  type        = string
  default     = "ragharness/batch"
}
