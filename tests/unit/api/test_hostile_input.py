"""Hostile CreateTask requests: each is a 4xx with a message saying what is wrong, and nothing is
stored or submitted."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from typing import Any

import pytest
import requests
from connexion import App

from tesk.app import create_app
from tesk.config import DEFAULT_BLOCKED_NETWORKS, CustomConfig, FilerConfig, LimitsConfig
from tesk.filer.network import (
    BlockedHostError,
    GuardedAdapter,
    check_resolved,
    check_url_host,
    literal_address,
)
from tesk.tes.states import State
from tests.fakes.fake_backend import FakeBackend
from tests.fakes.memory_store import MemoryStore
from tests.unit.api.support import BASES, Api, attach, new_app, task_body

BASE = BASES[0]
BLOCKED = [ip_network(n) for n in DEFAULT_BLOCKED_NETWORKS]


@pytest.fixture(scope="module")
def app() -> App:
    return new_app(CustomConfig(limits=LimitsConfig(max_body_bytes=4 * 1024 * 1024)))


@pytest.fixture
def api(app: App) -> Api:
    return attach(app)


def refused(api: Api, body: Any, status: int, *fragments: str, raw: bytes | None = None) -> None:
    if raw is None:
        response = api.client.post(f"{BASE}/tasks", json=body)
    else:
        response = api.client.post(
            f"{BASE}/tasks", data=raw, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    problem = response.get_json()
    assert problem["status"] == status
    for fragment in fragments:
        assert fragment in problem["detail"], problem
    assert "\n" not in problem["detail"]
    assert api.store.find(set(State)) == []
    assert api.backend.submitted == []


def executor(**fields: Any) -> dict[str, Any]:
    return {"image": "alpine", "command": ["true"], **fields}


# -- size and shape ------------------------------------------------------------------------------


def test_oversized_body(api: Api) -> None:
    body = task_body(description="x" * (4 * 1024 * 1024 + 1))
    refused(api, body, 413, "larger than the limit of 4194304 bytes")


@pytest.mark.parametrize("depth", [40, 5_000, 100_000])
def test_deeply_nested_json(api: Api, depth: int) -> None:
    raw = '{"executors": [{"image": "a", "command": ["true"]}], "x": ' + "[" * depth
    raw += "]" * depth + "}"
    refused(api, None, 400, "nested deeper than 32 levels", raw=raw.encode())


def test_nesting_inside_a_known_field(api: Api) -> None:
    env: Any = "v"
    for _ in range(40):
        env = {"k": env}
    refused(api, task_body(executors=[executor(env=env)]), 400, "nested deeper")


def test_huge_inline_content(api: Api) -> None:
    content = "é" * (512 * 1024 + 1)  # 2 bytes each in UTF-8: just over 1 MiB
    body = task_body(inputs=[{"path": "/data/in", "content": content}])
    refused(api, body, 400, "inputs[0].content", "1048578 bytes", "limit of 1048576 bytes")


def test_content_up_to_the_limit_is_accepted(api: Api) -> None:
    body = task_body(inputs=[{"path": "/data/in", "content": "x" * (1024 * 1024)}])
    assert api.client.post(f"{BASE}/tasks", json=body).status_code == 200


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("executors", [executor()] * 101, "at most 100 executors, this one has 101"),
        ("inputs", [{"path": f"/d/{i}", "content": ""} for i in range(10_001)], "at most 10000"),
        ("tags", {f"k{i}": "v" for i in range(101)}, "at most 100 tags"),
    ],
)
def test_too_many_items(api: Api, field: str, value: Any, message: str) -> None:
    refused(api, task_body(**{field: value}), 400, f"{field}: a task may have {message}")


# -- names, tags and paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "where", "what"),
    [
        (task_body(name="job\r\nX-Injected: 1"), "name", "CR (line break)"),
        (task_body(name="bell\x07"), "name", "U+0007 control"),
        (task_body(name="nul\x00"), "name", "NUL"),
        (task_body(name="c1\x85"), "name", "U+0085 control"),
        (task_body(name="ls\u2028"), "name", "U+2028 control"),
        (task_body(tags={"k": "v\nSet-Cookie: a=b"}), "tags['k']", "LF (line break)"),
        (task_body(tags={"k\r": "v"}), "tags['k\\r'] (key)", "CR"),
        (task_body(tags={"tab\tkey": "v"}), "(key)", "TAB"),
    ],
)
def test_control_characters_in_names_and_tags(
    api: Api, body: dict[str, Any], where: str, what: str
) -> None:
    refused(api, body, 400, where, what)


def test_unicode_names_and_tags_are_fine(api: Api) -> None:
    body = task_body(name="Ünïcode 名前 🧬", tags={"projekt": "Größe", "空": ""})
    assert api.client.post(f"{BASE}/tasks", json=body).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (task_body(name="n" * 1025), "name: 1025 bytes, more than the limit of 1024 bytes"),
        (task_body(name="é" * 513), "name: 1026 bytes"),
        (task_body(tags={"k" * 257: "v"}), "(key): 257 bytes"),
        (task_body(tags={"k": "v" * 1025}), "tags['k']: 1025 bytes"),
    ],
)
def test_long_names_and_tags(api: Api, body: dict[str, Any], message: str) -> None:
    refused(api, body, 400, message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (task_body(inputs=[{"path": "data/in", "content": "x"}]), "not an absolute path"),
        (task_body(inputs=[{"path": "/data/../etc/passwd", "content": "x"}]), "'..'"),
        (task_body(outputs=[{"path": "/data/../../x", "url": "s3://b/k"}]), "'..'"),
        (task_body(volumes=["/data/.."]), "'..'"),
        (task_body(executors=[executor(workdir="../x")]), "not an absolute path"),
        (task_body(executors=[executor(stdout="/data/../../etc/x")]), "'..'"),
        (task_body(executors=[executor(stdin="/data/in\nx")]), "LF (line break)"),
        (task_body(inputs=[{"path": "/data/\x1b[2Jx", "content": "x"}]), "U+001B control"),
    ],
)
def test_path_escapes(api: Api, body: dict[str, Any], message: str) -> None:
    refused(api, body, 400, message)


# -- URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://169.254.169.254:80/",
        "https://[fd00:ec2::254]/latest/api/token",
        "http://[fe80::1%25eth0]/x",
        "http://[::ffff:169.254.169.254]/x",
        "http://[64:ff9b::a9fe:a9fe]/x",
        "http://2852039166/x",  # 169.254.169.254 as one number
        "http://0xa9.0xfe.0xa9.0xfe/x",
        "http://0251.0376.0251.0376/x",
        "http://169.254.43518/x",
        "ftp://user:pw@169.254.1.1/x",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.GOOGLE.INTERNAL./x",
        "http://100.100.100.200/latest/meta-data",
    ],
)
def test_urls_into_metadata_networks_are_refused(api: Api, url: str) -> None:
    refused(api, task_body(inputs=[{"path": "/data/in", "url": url}]), 400, "inputs[0].url")
    refused(api, task_body(outputs=[{"path": "/data/o", "url": url}]), 400, "outputs[0].url")
    assert api.urls.calls == []  # refused before the filer is asked


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/bucket/x",
        "https://10.0.0.5/x",
        "http://example.org/169.254.169.254",
        "s3://bucket/169.254.169.254",
        "file:///srv/data/x",
        "http://metadata.example.org/x",
    ],
)
def test_other_urls_reach_the_filer_check(api: Api, url: str) -> None:
    response = api.client.post(
        f"{BASE}/tasks", json=task_body(inputs=[{"path": "/d/i", "url": url}])
    )
    assert response.status_code == 200, response.get_json()
    assert api.urls.calls == [(url, False)]


def test_content_inputs_are_not_fetched_so_their_url_is_not_checked(api: Api) -> None:
    body = task_body(inputs=[{"path": "/d/i", "content": "x", "url": "http://169.254.169.254/"}])
    assert api.client.post(f"{BASE}/tasks", json=body).status_code == 200


def test_blocking_can_be_turned_off(app: App) -> None:
    check_url_host("http://169.254.169.254/", [])
    custom = CustomConfig(filer=FilerConfig(blocked_networks=[]))
    api = attach(app, custom=custom)
    url = "http://169.254.169.254/"
    response = api.client.post(
        f"{BASE}/tasks", json=task_body(inputs=[{"path": "/d/i", "url": url}])
    )
    assert response.status_code == 200
    assert api.urls.calls == [(url, False)]


def test_address_forms() -> None:
    assert str(literal_address("2852039166")) == "169.254.169.254"
    assert str(literal_address("0x7f.1")) == "127.0.0.1"
    assert literal_address("example.org") is None
    assert literal_address("1e100.net") is None


def test_names_resolving_into_blocked_networks() -> None:
    check_resolved("localhost", BLOCKED)
    with pytest.raises(ValueError, match=r"blocked network 169\.254\.0\.0/16"):
        check_resolved("169.254.169.254", BLOCKED)
    check_resolved("no-such-host.invalid", BLOCKED)


# -- the body as a whole -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"[]", 400),
        (b'"a string"', 400),
        (b"{", 400),
        (b'{"executors": [{"image": "a", "command": ["true"]}], "name": "\\ud800"}', 400),
        (b'{"executors": [{"image": "a", "command": ["\\udfff"]}]}', 400),
        (b'{"executors": [{"image": "a", "command": ["x"], "env": {"\\ud800": "v"}}]}', 400),
        (b'{"executors": [{"image": "a", "command": ["x"]}], "name": "\xff"}', 400),
        (json.dumps(task_body(executors=[])).encode(), 400),
        (json.dumps(task_body(id="chosen-id")).encode(), 400),
        (json.dumps(task_body(state="COMPLETE")).encode(), 400),
    ],
)
def test_malformed_bodies(api: Api, raw: bytes, status: int) -> None:
    refused(api, None, status, raw=raw)


# -- the filer's HTTP sessions -------------------------------------------------------------------


def test_redirects_into_blocked_networks_are_not_followed() -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        session = requests.Session()
        guard = GuardedAdapter(BLOCKED)
        session.mount("http://", guard)
        session.mount("https://", guard)
        url = f"http://127.0.0.1:{server.server_address[1]}/input"
        with pytest.raises(BlockedHostError, match=r"169\.254\.169\.254"):
            session.get(url, timeout=5)
        with pytest.raises(BlockedHostError, match="metadata service"):
            session.get("http://metadata.google.internal/", timeout=5)
        assert session.get(url, timeout=5, allow_redirects=False).status_code == 302
    finally:
        server.shutdown()
        server.server_close()


def test_file_urls_outside_the_roots_are_refused_by_the_filer(tmp_path: Any) -> None:
    root = tmp_path / "data"
    root.mkdir()
    custom = CustomConfig(filer=FilerConfig(file_roots=[root]))
    client = create_app(
        custom, store=MemoryStore(), backend=FakeBackend(), storage=lambda: []
    ).app.test_client()
    for url in ("file:///etc/passwd", f"file://{root}/../secret", f"file://{root}/%2e%2e/x"):
        body = task_body(inputs=[{"path": "/data/in", "url": url}])
        response = client.post(f"{BASE}/tasks", json=body)
        assert response.status_code == 400, (url, response.get_json())
        assert "inputs[0].url" in response.get_json()["detail"]
    ok = task_body(inputs=[{"path": "/data/in", "url": (root / "in.txt").as_uri()}])
    assert client.post(f"{BASE}/tasks", json=ok).status_code == 200
