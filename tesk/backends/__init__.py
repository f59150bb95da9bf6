"""Compute backends: where the task engine runs."""
