"""A fake Kubernetes cluster for tests: an API server on 127.0.0.1 that the real `kubernetes`
client talks to, with a garbage collector, Job controller, scheduler, volume binder and a
kubelet that runs pod commands in bubblewrap. See docs/testing-kubernetes.md."""

from .cluster import NODE_NAME, FakeCluster
from .errors import ApiError
from .outcomes import (
    ClaimPending,
    Evicted,
    Exit,
    ImagePullFailure,
    NodeLost,
    OOMKilled,
    Outcome,
    Script,
    SlowStart,
    Unschedulable,
    command_contains,
    everything,
    labels_match,
    name_matches,
)
from .requestlog import ApiRequest
from .runner import BwrapRunner, ContainerProcess, ContainerRunner, Launch, Mount, StartError

__all__ = [
    "NODE_NAME",
    "ApiError",
    "ApiRequest",
    "BwrapRunner",
    "ClaimPending",
    "ContainerProcess",
    "ContainerRunner",
    "Evicted",
    "Exit",
    "FakeCluster",
    "ImagePullFailure",
    "Launch",
    "Mount",
    "NodeLost",
    "OOMKilled",
    "Outcome",
    "Script",
    "SlowStart",
    "StartError",
    "Unschedulable",
    "command_contains",
    "everything",
    "labels_match",
    "name_matches",
]
