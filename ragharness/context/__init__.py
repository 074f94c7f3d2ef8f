"""The locked context, the harness's first promise: every gold item's passages are retrieved once, every field a
prompt, file or report can show is redacted once, and the result is hashed. Every candidate and the judge see
exactly this pack; the run snapshots it (`context_packs.jsonl`) so a re-score or a compare reads the same context.

Sits between guardrails (which it applies) and generation (which renders requests from its packs)."""
