"""The fake API server through the real `kubernetes` client: CRUD, errors, selectors, watches."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.k8s.fakecluster import FakeCluster

NS = "tesk"
PARKED = "elsewhere"  # pods bound to a node that is not the fake's: nothing runs them


def configmap(name: str = "", labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name} if name else {}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def parked_pod(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "nodeName": PARKED,
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["true"]}],
        },
    }


def error_body(error: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    return body


def test_configmap_crud_keeps_identity_and_bumps_resource_version(
    core_v1: client.CoreV1Api,
) -> None:
    created = core_v1.create_namespaced_config_map(NS, configmap("task-a", x="1"))
    assert created.metadata.uid
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
        created.metadata.creation_timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    fetched = core_v1.read_namespaced_config_map("task-a", NS)
    assert fetched.data == {"x": "1"}
    assert fetched.metadata.resource_version == created.metadata.resource_version

    fetched.data["y"] = "2"
    replaced = core_v1.replace_namespaced_config_map("task-a", NS, fetched)
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    assert replaced.metadata.uid == created.metadata.uid

    patched = core_v1.patch_namespaced_config_map("task-a", NS, {"data": {"x": None, "z": "3"}})
    assert patched.data == {"y": "2", "z": "3"}

    unchanged = core_v1.patch_namespaced_config_map("task-a", NS, {"data": {"z": "3"}})
    assert unchanged.metadata.resource_version == patched.metadata.resource_version

    # This client returns DELETE bodies as plain dicts: a Status for most kinds.
    status = core_v1.delete_namespaced_config_map("task-a", NS)
    assert status["kind"] == "Status"
    assert status["status"] == "Success"
    assert status["details"]["uid"] == created.metadata.uid
    with pytest.raises(ApiException) as missing:
        core_v1.read_namespaced_config_map("task-a", NS)
    assert missing.value.status == 404


def test_json_patch_and_strategic_merge_of_keyed_lists(core_v1: client.CoreV1Api) -> None:
    core_v1.create_namespaced_pod(NS, parked_pod("p"))
    patched = core_v1.patch_namespaced_pod(
        "p", NS, [{"op": "add", "path": "/metadata/labels/stage", "value": "exec"}]
    )
    assert patched.metadata.labels == {"stage": "exec"}
    patched = core_v1.patch_namespaced_pod(
        "p", NS, {"spec": {"containers": [{"name": "main", "image": "busybox:2"}]}}
    )
    # Strategic merge: the container is merged by name, its command kept.
    assert [(c.name, c.image, c.command) for c in patched.spec.containers] == [
        ("main", "busybox:2", ["true"])
    ]


def test_generate_name_gives_distinct_names_with_the_prefix(core_v1: client.CoreV1Api) -> None:
    names = {
        core_v1.create_namespaced_config_map(
            NS, {"metadata": {"generateName": "task-"}, "data": {}}
        ).metadata.name
        for _ in range(5)
    }
    assert len(names) == 5
    assert all(re.fullmatch(r"task-[a-z0-9]{5}", n) for n in names)


def test_already_exists_is_a_409_status(core_v1: client.CoreV1Api) -> None:
    core_v1.create_namespaced_config_map(NS, configmap("dup"))
    with pytest.raises(ApiException) as error:
        core_v1.create_namespaced_config_map(NS, configmap("dup"))
    assert error.value.status == 409
    body = error_body(error.value)
    assert body["kind"] == "Status"
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "dup" already exists'
    assert body["details"] == {"name": "dup", "kind": "configmaps"}


def test_not_found_is_a_404_status(core_v1: client.CoreV1Api, batch_v1: client.BatchV1Api) -> None:
    with pytest.raises(ApiException) as error:
        core_v1.read_namespaced_config_map("nope", NS)
    assert error.value.status == 404
    assert error_body(error.value)["message"] == 'configmaps "nope" not found'
    with pytest.raises(ApiException) as job_error:
        batch_v1.read_namespaced_job("nope", NS)
    assert error_body(job_error.value)["message"] == 'jobs.batch "nope" not found'
    with pytest.raises(ApiException) as ns_error:
        core_v1.create_namespaced_config_map("no-such-namespace", configmap("x"))
    assert error_body(ns_error.value)["message"] == 'namespaces "no-such-namespace" not found'


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("ConfigMap", configmap(), "metadata.name"),
        ("ConfigMap", configmap("UPPER"), "metadata.name"),
        ("ConfigMap", configmap("ok", labels={"task": "x" * 64}), "metadata.labels"),
        ("Pod", {"metadata": {"name": "p"}, "spec": {"containers": []}}, "spec.containers"),
        (
            "Pod",
            {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}},
            "spec.containers[0].image",
        ),
        (
            "Pod",
            {
                "metadata": {"name": "p"},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "i",
                            "volumeMounts": [{"name": "missing", "mountPath": "/data"}],
                        }
                    ]
                },
            },
            "spec.containers[0].volumeMounts[0].name",
        ),
        (
            "Job",
            {
                "metadata": {"name": "j"},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
            },
            "spec.template.spec.restartPolicy",
        ),
    ],
)
def test_invalid_objects_are_a_422_with_causes(
    core_v1: client.CoreV1Api,
    batch_v1: client.BatchV1Api,
    kind: str,
    body: dict[str, Any],
    field: str,
) -> None:
    create = {
        "ConfigMap": core_v1.create_namespaced_config_map,
        "Pod": core_v1.create_namespaced_pod,
        "Job": batch_v1.create_namespaced_job,
    }[kind]
    with pytest.raises(ApiException) as error:
        create(NS, body)
    assert error.value.status == 422
    status = error_body(error.value)
    assert status["reason"] == "Invalid"
    assert re.match(rf'{kind}(\.batch)? "[^"]*" is invalid: ', status["message"])
    assert field in [cause["field"] for cause in status["details"]["causes"]]


def test_too_large_configmap_is_rejected(core_v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as error:
        core_v1.create_namespaced_config_map(NS, configmap("big", task="x" * (1024 * 1024 + 1)))
    assert error.value.status == 422
    assert "Too long: must have at most 1048576 bytes" in error_body(error.value)["message"]


def test_stale_resource_version_is_a_409_conflict(core_v1: client.CoreV1Api) -> None:
    stale = core_v1.create_namespaced_config_map(NS, configmap("c", v="1"))
    core_v1.patch_namespaced_config_map("c", NS, {"data": {"v": "2"}})
    stale.data = {"v": "3"}
    with pytest.raises(ApiException) as error:
        core_v1.replace_namespaced_config_map("c", NS, stale)
    assert error.value.status == 409
    assert error_body(error.value)["reason"] == "Conflict"
    assert core_v1.read_namespaced_config_map("c", NS).data == {"v": "2"}


def test_pod_spec_is_immutable_but_status_is_written_through_the_subresource(
    core_v1: client.CoreV1Api,
) -> None:
    core_v1.create_namespaced_pod(NS, parked_pod("p"))
    with pytest.raises(ApiException) as error:
        core_v1.patch_namespaced_pod("p", NS, {"spec": {"restartPolicy": "Always"}})
    assert error.value.status == 422
    ignored = core_v1.patch_namespaced_pod("p", NS, {"status": {"phase": "Running"}})
    assert ignored.status.phase == "Pending"
    written = core_v1.patch_namespaced_pod_status("p", NS, {"status": {"phase": "Running"}})
    assert written.status.phase == "Running"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=tesk", ["a", "b", "c"]),
        ("app==tesk,role=filer", ["a"]),
        ("role!=filer", ["b", "c", "d"]),
        ("role in (filer,executor)", ["a", "b"]),
        ("role notin (filer,executor)", ["c", "d"]),
        ("role", ["a", "b", "c"]),
        ("!role", ["d"]),
        ("app=tesk,!role", []),
        ("app in (tesk), role notin (filer)", ["b", "c"]),
    ],
)
def test_label_selectors(core_v1: client.CoreV1Api, selector: str, expected: list[str]) -> None:
    labels = {
        "a": {"app": "tesk", "role": "filer"},
        "b": {"app": "tesk", "role": "executor"},
        "c": {"app": "tesk", "role": "taskmaster"},
        "d": {"app": "other"},
    }
    for name, value in labels.items():
        core_v1.create_namespaced_config_map(NS, configmap(name, labels=value))
    found = core_v1.list_namespaced_config_map(NS, label_selector=selector).items
    # kube-root-ca.crt, which every namespace has, carries no labels.
    assert sorted(i.metadata.name for i in found if i.metadata.name in labels) == expected


def test_bad_selectors_are_a_400(core_v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as labels:
        core_v1.list_namespaced_config_map(NS, label_selector="a in b")
    assert labels.value.status == 400
    with pytest.raises(ApiException) as fields:
        core_v1.list_namespaced_pod(NS, field_selector="spec.containers=x")
    assert fields.value.status == 400
    assert "field label not supported" in error_body(fields.value)["message"]


def test_field_selectors_on_name_and_phase(core_v1: client.CoreV1Api) -> None:
    for name in ("p1", "p2"):
        core_v1.create_namespaced_pod(NS, parked_pod(name))
    core_v1.patch_namespaced_pod_status("p2", NS, {"status": {"phase": "Running"}})
    by_name = core_v1.list_namespaced_pod(NS, field_selector="metadata.name=p1").items
    assert [p.metadata.name for p in by_name] == ["p1"]
    running = core_v1.list_namespaced_pod(NS, field_selector="status.phase=Running").items
    assert [p.metadata.name for p in running] == ["p2"]
    not_running = core_v1.list_namespaced_pod(NS, field_selector="status.phase!=Running").items
    assert [p.metadata.name for p in not_running] == ["p1"]


def test_list_pages_and_all_namespaces(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    fake_cluster.create_namespace("other")
    for name in ("a", "b", "c"):
        core_v1.create_namespaced_config_map(NS, configmap(name, labels={"k": "v"}))
    core_v1.create_namespaced_config_map("other", configmap("d", labels={"k": "v"}))
    first = core_v1.list_namespaced_config_map(NS, label_selector="k=v", limit=2)
    assert [i.metadata.name for i in first.items] == ["a", "b"]
    assert first.metadata.remaining_item_count == 1
    rest = core_v1.list_namespaced_config_map(
        NS, label_selector="k=v", limit=2, _continue=first.metadata._continue
    )
    assert [i.metadata.name for i in rest.items] == ["c"]
    assert rest.metadata._continue is None
    everywhere = core_v1.list_config_map_for_all_namespaces(label_selector="k=v").items
    assert sorted((i.metadata.namespace, i.metadata.name) for i in everywhere) == [
        ("other", "d"),
        (NS, "a"),
        (NS, "b"),
        (NS, "c"),
    ]


def _collect(
    stream_call: Any, stop_after: int, **kwargs: Any
) -> tuple[list[Any], threading.Thread]:
    """Run a watch in a thread until `stop_after` events came (or its timeout ends)."""
    seen: list[Any] = []
    watcher = watch.Watch()

    def run() -> None:
        for event in watcher.stream(stream_call, **kwargs):
            seen.append(event)
            if len(seen) >= stop_after:
                watcher.stop()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return seen, thread


def test_watch_streams_added_modified_deleted_for_the_selection(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    fake_cluster.create_namespace("other")
    listed = core_v1.list_namespaced_config_map(NS, label_selector="app=tesk")
    seen, thread = _collect(
        core_v1.list_namespaced_config_map,
        5,
        namespace=NS,
        label_selector="app=tesk",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=10,
    )
    core_v1.create_namespaced_config_map(NS, configmap("w", labels={"app": "tesk"}))
    core_v1.create_namespaced_config_map("other", configmap("w", labels={"app": "tesk"}))
    core_v1.create_namespaced_config_map(NS, configmap("unlabelled"))
    core_v1.patch_namespaced_config_map("w", NS, {"data": {"k": "v"}})
    core_v1.patch_namespaced_config_map("unlabelled", NS, {"metadata": {"labels": {"app": "tesk"}}})
    core_v1.patch_namespaced_config_map("w", NS, {"metadata": {"labels": {"app": "gone"}}})
    core_v1.delete_namespaced_config_map("unlabelled", NS)
    thread.join(timeout=10)
    assert [(e["type"], e["object"].metadata.name) for e in seen] == [
        ("ADDED", "w"),
        ("MODIFIED", "w"),
        ("ADDED", "unlabelled"),  # it joined the selection
        ("DELETED", "w"),  # it left the selection
        ("DELETED", "unlabelled"),
    ]
    assert seen[1]["object"].data == {"k": "v"}
    versions = [int(e["object"].metadata.resource_version) for e in seen]
    assert versions == sorted(versions)


def test_watch_for_all_namespaces_and_without_resource_version(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    fake_cluster.create_namespace("other")
    core_v1.create_namespaced_config_map(NS, configmap("before", labels={"w": "1"}))
    seen, thread = _collect(
        core_v1.list_config_map_for_all_namespaces, 2, label_selector="w=1", timeout_seconds=10
    )
    fake_cluster.wait_for(lambda: seen)
    core_v1.create_namespaced_config_map("other", configmap("after", labels={"w": "1"}))
    thread.join(timeout=10)
    # Without a resourceVersion a watch starts with synthetic ADDED events for what exists.
    assert [
        (e["type"], e["object"].metadata.namespace, e["object"].metadata.name) for e in seen
    ] == [("ADDED", NS, "before"), ("ADDED", "other", "after")]


def test_watch_list_with_initial_events_and_bookmarks(core_v1: client.CoreV1Api) -> None:
    core_v1.create_namespaced_config_map(NS, configmap("existing", labels={"b": "1"}))
    seen: list[tuple[str, str, dict[str, str]]] = []
    watcher = watch.Watch()
    for event in watcher.stream(
        core_v1.list_namespaced_config_map,
        NS,
        label_selector="b=1",
        allow_watch_bookmarks=True,
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        timeout_seconds=10,
    ):
        meta = event["raw_object"]["metadata"]
        seen.append((event["type"], meta.get("name", ""), meta.get("annotations") or {}))
        if len(seen) == 1:
            core_v1.create_namespaced_config_map(NS, configmap("new", labels={"b": "1"}))
        if len(seen) == 4:
            watcher.stop()
    assert seen == [
        ("ADDED", "existing", {}),
        ("BOOKMARK", "", {"k8s.io/initial-events-end": "true"}),
        ("ADDED", "new", {}),
        ("BOOKMARK", "", {}),  # the periodic one
    ]


def test_watch_from_a_compacted_resource_version_is_410_gone(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    old = core_v1.list_namespaced_config_map(NS).metadata.resource_version
    core_v1.create_namespaced_config_map(NS, configmap("x"))
    fake_cluster.compact()
    with pytest.raises(ApiException) as error:
        for _ in watch.Watch().stream(
            core_v1.list_namespaced_config_map, NS, resource_version=old, timeout_seconds=5
        ):
            pass
    assert error.value.status == 410


def test_watch_ends_at_its_timeout(core_v1: client.CoreV1Api) -> None:
    events = list(
        watch.Watch().stream(
            core_v1.list_namespaced_config_map, NS, label_selector="none=here", timeout_seconds=1
        )
    )
    assert events == []


def test_delete_preconditions_and_pod_delete_returns_the_pod(core_v1: client.CoreV1Api) -> None:
    core_v1.create_namespaced_config_map(NS, configmap("c"))
    with pytest.raises(ApiException) as error:
        core_v1.delete_namespaced_config_map(
            "c", NS, body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="x"))
        )
    assert error.value.status == 409
    core_v1.create_namespaced_pod(NS, parked_pod("p"))
    core_v1.patch_namespaced_pod_status("p", NS, {"status": {"phase": "Succeeded"}})
    deleted = core_v1.delete_namespaced_pod("p", NS)
    assert deleted.kind == "Pod"  # pods, unlike most kinds, answer with the object


def test_discovery_and_version(k8s_client: client.ApiClient) -> None:
    version = client.VersionApi(k8s_client).get_code()
    assert version.major == "1"
    resources = client.CoreV1Api(k8s_client).get_api_resources().resources
    assert {"pods", "pods/log", "pods/status", "configmaps", "persistentvolumeclaims"} <= {
        r.name for r in resources
    }
    groups = client.ApisApi(k8s_client).get_api_versions().groups
    assert "batch" in [g.name for g in groups]


def test_requests_are_recorded_for_counting(
    fake_cluster: FakeCluster, core_v1: client.CoreV1Api
) -> None:
    fake_cluster.clear_requests()
    core_v1.create_namespaced_config_map(NS, configmap("a"))
    core_v1.create_namespaced_config_map(NS, configmap("b"))
    core_v1.list_namespaced_config_map(NS, label_selector="x=y")
    with pytest.raises(ApiException):
        core_v1.read_namespaced_config_map("missing", NS)
    assert fake_cluster.count_requests("create", "configmaps") == 2
    listing = [r for r in fake_cluster.requests if r.verb == "list"]
    assert len(listing) == 1
    assert listing[0].query["labelSelector"] == "x=y"
    assert listing[0].namespace == NS
    assert listing[0].user == "fakecluster-admin"
    assert [r.code for r in fake_cluster.requests if r.verb == "get"] == [404]


def test_rbac_denies_until_a_role_is_bound() -> None:
    with FakeCluster(rbac=True) as cluster:
        token = cluster.tokens.for_service_account(NS, "default")
        configuration = client.Configuration()
        configuration.host = cluster.base_url
        configuration.api_key = {"BearerToken": token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        with client.ApiClient(configuration) as api:
            core = client.CoreV1Api(api)
            with pytest.raises(ApiException) as error:
                core.list_namespaced_config_map(NS)
            assert error.value.status == 403
            assert (
                'User "system:serviceaccount:tesk:default" cannot list resource "configmaps"'
                in (error_body(error.value)["message"])
            )
            cluster.apply(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": {"name": "reader", "namespace": NS},
                    "rules": [
                        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}
                    ],
                }
            )
            cluster.apply(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": "reader", "namespace": NS},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": "reader",
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": NS}],
                }
            )
            assert core.list_namespaced_config_map(NS).items
            with pytest.raises(ApiException) as denied:
                core.create_namespaced_config_map(NS, configmap("x"))
            assert denied.value.status == 403
        assert cluster.errors == []
