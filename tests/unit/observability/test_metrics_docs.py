"""docs/metrics.md names every metric /metrics serves, and no metric it does not serve."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tesk.config import MetricsConfig
from tesk.observability import prometheus
from tesk.observability.wiring import process_recorder
from tests.fakes.memory_store import MemoryStore

DOC = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"


def served_names() -> set[str]:
    recorder = process_recorder(MetricsConfig())
    assert isinstance(recorder, prometheus.PrometheusRecorder)
    text = prometheus.exposition(recorder, MemoryStore(), "1.0").decode()
    names = set()
    for family in text_string_to_metric_families(text):
        # The names as written in queries: counters with _total, info metrics with _info.
        suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
        names.add(family.name + suffix)
    return names


def documented_names() -> set[str]:
    return set(re.findall(r"^\| `(tesk_\w+)` \|", DOC.read_text(), flags=re.MULTILINE))


def test_every_served_metric_is_documented() -> None:
    missing = served_names() - documented_names()
    assert not missing, f"add to the table in docs/metrics.md: {sorted(missing)}"


def test_every_documented_metric_is_served() -> None:
    served = {name.removesuffix("_info") for name in served_names()} | served_names()
    stale = documented_names() - served
    assert not stale, f"docs/metrics.md lists metrics /metrics does not serve: {sorted(stale)}"
