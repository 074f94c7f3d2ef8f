"""Scoring: the Scorer seam, the offline scorers, the LLM judge, per-item assertions, the metric catalog and the
scorers' calibrated thresholds."""
