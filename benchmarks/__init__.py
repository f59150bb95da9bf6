"""Benchmarks: scripts anyone can run (`make bench`); results are written to docs/."""
