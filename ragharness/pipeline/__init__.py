"""The pipeline: the only room that crosses rooms. Builds components from a config, runs, re-scores, dry-runs and
gates evaluations; registers the built-in plugins."""
