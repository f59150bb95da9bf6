"""The record of every request the fake API server answered, for tests to count API calls."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class ApiRequest:
    verb: str  # Kubernetes verb: get, list, watch, create, update, patch, delete, ...
    method: str  # HTTP method
    path: str
    query: dict[str, str]
    resource: str  # plural ("pods"), "" for discovery and other non-resource paths
    subresource: str | None
    namespace: str
    name: str
    user: str
    code: int  # HTTP status of the answer (200 for a watch that started)


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[ApiRequest] = []

    def add(self, entry: ApiRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[ApiRequest]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
