"""Analysis of finished runs: paired statistics, A/B comparison, agreement with human labels, retrieval quality."""
