"""The Kubernetes backend: a taskmaster Job per task (see docs/kubernetes.md)."""

from tesk.backends.kubernetes.backend import KubernetesBackend

__all__ = ["KubernetesBackend"]
