"""Durable task storage."""
