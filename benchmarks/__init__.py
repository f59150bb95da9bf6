"""Benchmarks: scripts anyone can run; results as ratios to a baseline of the same run."""
