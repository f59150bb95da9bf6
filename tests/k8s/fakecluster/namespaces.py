"""What the service account and root CA controllers put into every namespace."""

from __future__ import annotations

import contextlib

from .errors import ApiError
from .resources import BY_PLURAL
from .store import Store

FAKE_CA = "-----BEGIN CERTIFICATE-----\nfakecluster\n-----END CERTIFICATE-----\n"


def ensure_defaults(store: Store, namespace: str) -> None:
    """The `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap, if missing."""
    ns = store.try_get(BY_PLURAL["namespaces"], "", namespace)
    if ns is None or ns["metadata"].get("deletionTimestamp"):
        return
    wanted = [
        (BY_PLURAL["serviceaccounts"], {"metadata": {"name": "default", "namespace": namespace}}),
        (
            BY_PLURAL["configmaps"],
            {
                "metadata": {"name": "kube-root-ca.crt", "namespace": namespace},
                "data": {"ca.crt": FAKE_CA},
            },
        ),
    ]
    for resource, obj in wanted:
        if store.try_get(resource, namespace, obj["metadata"]["name"]) is None:
            # Someone may have been quicker (or the namespace is going away): fine either way.
            with contextlib.suppress(ApiError):
                store.create(resource, obj)
