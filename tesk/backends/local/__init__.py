"""The local backend: tasks run on this machine (bwrap, docker or podman) in the data dir."""

from tesk.backends.local.backend import LocalBackend

__all__ = ["LocalBackend"]
