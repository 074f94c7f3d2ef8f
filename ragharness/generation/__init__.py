"""Generation: providers (Bedrock, OpenAI-compatible, offline), the runner (retries, rate limits, budget), the
response cache, prices, prompt templates, and the locked contexts and requests sent to models."""
