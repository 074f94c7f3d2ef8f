"""Runs: the run directory (the source of truth), run stores (local or S3), the history index and run summaries."""
