"""Provider batch jobs: hand large sets of model calls to Amazon Bedrock batch inference or the OpenAI Batch API."""
