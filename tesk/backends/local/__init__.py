"""The local backend: tasks run on this machine (bwrap, docker or podman) in the data dir."""

from tesk.backends.local.backend import LocalBackend
from tesk.backends.local.serving import LocalRunner

__all__ = ["LocalBackend", "LocalRunner"]
