"""Transfers between the task volume and storage, chosen by URL scheme."""
