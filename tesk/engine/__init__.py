"""The task engine: stage inputs, run executors in order, stage outputs, report progress."""
