"""core/v1 Events as controllers and the kubelet record them (kubectl describe shows these)."""

from __future__ import annotations

import contextlib
import secrets

from .errors import ApiError
from .meta import Obj, timestamp
from .resources import BY_KIND, BY_PLURAL
from .store import Store


def record(
    store: Store,
    involved: Obj,
    reason: str,
    message: str,
    *,
    warning: bool = False,
    component: str,
    host: str | None = None,
) -> None:
    meta = involved.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    stamp = timestamp()
    resource = BY_KIND.get(involved.get("kind", ""))
    event: Obj = {
        "metadata": {
            "name": f"{meta.get('name', '')}.{secrets.token_hex(8)}",
            "namespace": namespace,
        },
        "involvedObject": {
            "kind": involved.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "apiVersion": resource.api_version if resource else involved.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "source": {"component": component, **({"host": host} if host else {})},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "type": "Warning" if warning else "Normal",
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": host or "",
    }
    # Events are best effort, as in Kubernetes (the namespace may be going away).
    with contextlib.suppress(ApiError):
        store.create(BY_PLURAL["events"], event)
