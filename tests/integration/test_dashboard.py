"""The dashboard in a real browser (Debian's chromium, driven by Playwright) against `tesk serve`.

Every request the browser makes must go to the TESK server on 127.0.0.1: anything else is refused
and fails the test. Screenshots go to the test's temp dir; with TESK_DASHBOARD_SCREENSHOTS=DIR
(e.g. docs/images) the ones the docs show are written there too.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tesk.auth.users import User, hash_password, write_users
from tests.integration.live_server import LiveServer, live_server

CHROMIUM = os.environ.get("TESK_TEST_CHROMIUM", "/usr/bin/chromium")
# Without the networking flags chromium keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
]
TIMEOUT_MS = 20_000
FINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"}

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = playwright_api.expect


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM} (scripts/test-setup.sh installs Debian's)")
    with playwright_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
        except playwright_api.Error as exc:
            pytest.skip(f"chromium does not start here: {str(exc).splitlines()[0]}")
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("tesk-dashboard")) as running:
        yield running


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tesk-users") / "users"
    write_users(
        path, [User("alice", hash_password("alice-pw")), User("bob", hash_password("bob-pw"))]
    )
    return path


@pytest.fixture(scope="module")
def basic_server(
    tmp_path_factory: pytest.TempPathFactory, users_file: Path
) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("tesk-dashboard-basic")
    overlay = root / "auth.yaml"
    overlay.write_text(f"custom:\n  auth:\n    mode: basic\n    users_file: {users_file}\n")
    with live_server(root, "--config", str(overlay)) as running:
        yield running


class Page:
    """A browser tab that may only talk to 127.0.0.1 and must not raise JavaScript errors."""

    def __init__(self, browser: Any, base: str, shots: Path) -> None:
        self.base = base
        self.shots = shots
        self.context = browser.new_context(viewport={"width": 1200, "height": 760})
        self.refused: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._only_loopback)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _only_loopback(self, route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def open(self, path: str) -> Any:
        self.page.goto(self.base + path)
        return self.page

    def screenshot(self, name: str, full_page: bool = False) -> None:
        target = self.shots / name
        self.page.screenshot(path=str(target), full_page=full_page)
        published = os.environ.get("TESK_DASHBOARD_SCREENSHOTS")
        if published:
            Path(published).mkdir(parents=True, exist_ok=True)
            shutil.copy(target, Path(published) / name)

    def close(self) -> None:
        self.context.close()
        assert self.refused == [], f"the dashboard tried to leave 127.0.0.1: {self.refused}"
        assert self.errors == [], f"JavaScript errors: {self.errors}"


@pytest.fixture
def tab(browser: Any, server: LiveServer, tmp_path: Path) -> Iterator[Page]:
    page = Page(browser, server.url, tmp_path)
    yield page
    page.close()


def create(server: LiveServer, task: dict[str, Any], auth: tuple[str, str] | None = None) -> str:
    response = requests.post(f"{server.api}/tasks", json=task, auth=auth, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def shell(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "executors": [{"image": "busybox", "command": ["sh", "-c", script]}],
        **extra,
    }


def wait_for(server: LiveServer, task_id: str, states: set[str], auth: Any = None) -> str:
    deadline = time.monotonic() + 30
    state = ""
    while time.monotonic() < deadline:
        state = requests.get(f"{server.api}/tasks/{task_id}", auth=auth, timeout=10).json()["state"]
        if state in states:
            return str(state)
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} stayed {state}")


def row_ids(page: Any) -> list[str]:
    return [
        str(x)
        for x in page.locator("#task-rows tr[data-task-id]").evaluate_all(
            "rows => rows.map(r => r.dataset.taskId)"
        )
    ]


def test_root_redirects_and_the_list_is_newest_first(tab: Page, server: LiveServer) -> None:
    run = uuid.uuid4().hex[:8]
    ids = [create(server, shell(f"order-{run}-{i}", "true")) for i in range(3)]
    page = tab.open("/")
    assert urlsplit(page.url).path == "/dashboard/"
    rows = page.locator("#task-rows tr[data-task-id]")
    expect(rows.first).to_have_attribute("data-task-id", ids[-1])
    shown = [task_id for task_id in row_ids(page) if task_id in ids]
    assert shown == ids[::-1]
    expect(page.locator(f'tr[data-task-id="{ids[0]}"] a').first).to_have_text(f"order-{run}-0")


def test_the_list_follows_new_tasks_by_itself(tab: Page, server: LiveServer) -> None:
    run = uuid.uuid4().hex[:8]
    asked: list[str] = []
    tab.page.on("request", lambda request: asked.append(urlsplit(request.url).path))
    page = tab.open(f"/dashboard/?name_prefix=late-{run}")
    expect(page.locator("#task-rows")).to_contain_text("No tasks.")
    task_id = create(server, shell(f"late-{run}", "true"))
    expect(page.locator(f'tr[data-task-id="{task_id}"]')).to_be_visible()
    # Told by the server's event stream (an EventSource), not found by polling alone.
    assert "/ga4gh/tes/v1/events" in asked
    expect(page.locator(f'tr[data-task-id="{task_id}"]')).to_contain_text("COMPLETE")


def test_filters_change_the_url_and_rows_and_a_shared_url_restores_them(
    tab: Page, server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    team = f"team-{run}"
    alpha = create(server, shell(f"alpha-{run}", "true", tags={team: "red"}))
    beta = create(server, shell(f"beta-{run}", "exit 3", tags={team: "blue"}))
    wait_for(server, alpha, {"COMPLETE"})
    wait_for(server, beta, {"EXECUTOR_ERROR"})

    page = tab.open("/dashboard/")
    page.get_by_placeholder("name starts with").fill(f"alpha-{run}")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(f"{server.url}/dashboard/?name_prefix=alpha-{run}")
    expect(page.locator("#task-rows tr[data-task-id]")).to_have_count(1)
    assert row_ids(page) == [alpha]

    page.get_by_placeholder("name starts with").fill("")
    page.get_by_placeholder("tag key").fill(team)
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#task-rows tr[data-task-id]")).to_have_count(2)
    # Counts by state cover the filter without its state: one each.
    expect(page.locator(".counts")).to_contain_text("all 2")
    expect(page.locator('.count[data-state="EXECUTOR_ERROR"]')).to_contain_text("1")
    page.locator('select[name="state"]').select_option("EXECUTOR_ERROR")
    expect(page.locator("#task-rows tr[data-task-id]")).to_have_count(1)
    assert row_ids(page) == [beta]
    query = parse_qs(urlsplit(page.url).query)
    assert query == {"state": ["EXECUTOR_ERROR"], "tag_key": [team]}

    # Someone else opens the shared link: same filter, same rows.
    shared = Page(browser, server.url, tmp_path)
    try:
        other = shared.open(f"/dashboard/?tag_key={team}&tag_value=red")
        expect(other.locator("#task-rows tr[data-task-id]")).to_have_count(1)
        assert row_ids(other) == [alpha]
        expect(other.get_by_placeholder("tag key")).to_have_value(team)
        expect(other.get_by_placeholder("tag value (any)")).to_have_value("red")
    finally:
        shared.close()

    # Back goes to the previous filter.
    page.go_back()
    expect(page.locator("#task-rows tr[data-task-id]")).to_have_count(2)
    expect(page.locator('select[name="state"]')).to_have_value("")


def test_paging_through_page_tokens(tab: Page, server: LiveServer) -> None:
    run = uuid.uuid4().hex[:8]
    ids = [create(server, shell(f"page-{run}-{i:02}", "true")) for i in range(27)]
    page = tab.open(f"/dashboard/?name_prefix=page-{run}")
    expect(page.locator("#task-rows tr[data-task-id]")).to_have_count(25)
    assert row_ids(page) == ids[::-1][:25]
    page.get_by_role("button", name="Older").click()
    expect(page.locator("#task-rows tr[data-task-id]")).to_have_count(2)
    assert row_ids(page) == ids[:2][::-1]
    expect(page.get_by_role("button", name="Older")).to_be_disabled()
    page.get_by_role("button", name="Newer").click()
    expect(page.locator("#task-rows tr[data-task-id]")).to_have_count(25)


def test_the_task_page_shows_executor_output_and_output_sizes(
    tab: Page, server: LiveServer
) -> None:
    out = f"{server.files.as_uri()}/dash-{uuid.uuid4().hex[:8]}.txt"
    task_id = create(
        server,
        shell(
            "with-output",
            "echo hello-from-the-dashboard; echo warn-line >&2; printf 12345 > /data/out/r.txt",
            outputs=[{"path": "/data/out/r.txt", "url": out}],
        ),
    )
    # Opened at once: the page follows the task until it ends.
    page = tab.open(f"/dashboard/tasks/{task_id}")
    expect(page.locator("#task-state")).to_have_text("COMPLETE")
    expect(page.locator("#executors pre.stdout")).to_contain_text("hello-from-the-dashboard")
    expect(page.locator("#executors pre.stderr")).to_contain_text("warn-line")
    expect(page.locator("#executors .exit-code")).to_have_text("0")
    expect(page.locator("#outputs table.uploaded")).to_contain_text("5 B")
    expect(page.locator("#cancel")).to_be_disabled()
    # Sections with nothing to show are left out, not rendered as "null".
    expect(page.locator("#task")).not_to_contain_text("null")


def test_cancel_from_the_task_page(tab: Page, server: LiveServer) -> None:
    task_id = create(server, shell("long", "sleep 120"))
    wait_for(server, task_id, {"RUNNING"})
    page = tab.open(f"/dashboard/tasks/{task_id}")
    expect(page.locator("#task-state")).to_have_text("RUNNING")
    page.locator("#cancel").click()
    expect(page.locator("#task-state")).to_have_text("CANCELED")
    expect(page.locator("#cancel")).to_be_disabled()
    assert wait_for(server, task_id, FINAL) == "CANCELED"


def test_submit_shows_the_api_error_then_lands_on_the_new_task(
    tab: Page, server: LiveServer
) -> None:
    bad = json.dumps(
        {
            "executors": [{"image": "busybox", "command": ["true"]}],
            "inputs": [{"path": "relative/in.txt", "content": "x"}],
        }
    )
    answer = requests.post(
        f"{server.api}/tasks", data=bad, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert answer.status_code == 400
    page = tab.open("/dashboard/submit")
    page.locator("#task-json").fill(bad)
    page.get_by_role("button", name="Submit task").click()
    expect(page.locator("#submit-result .error-detail")).to_have_text(answer.json()["detail"])
    expect(page.locator("#submit-result .error-title")).to_have_text(answer.json()["title"])

    page.locator("#task-json").fill("{not json")
    page.get_by_role("button", name="Submit task").click()
    expect(page.locator("#submit-result .error")).to_contain_text("Bad Request")

    page.get_by_role("button", name="Reset example").click()
    page.get_by_role("button", name="Submit task").click()
    page.wait_for_url(f"{server.url}/dashboard/tasks/*")
    task_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    expect(page.locator("#task-id")).to_have_text(task_id)
    expect(page.locator("#executors pre.stdout")).to_contain_text("hello from TESK")


def test_service_info_page(tab: Page, server: LiveServer) -> None:
    info = requests.get(f"{server.api}/service-info", timeout=10).json()
    page = tab.open("/dashboard/service-info")
    expect(page.locator("dl.fields")).to_contain_text(info["name"])
    expect(page.locator("dl.fields")).to_contain_text("org.ga4gh:tes:1.1.0")


def test_basic_login_shows_only_the_users_tasks(
    browser: Any, basic_server: LiveServer, tmp_path: Path
) -> None:
    alices = create(basic_server, shell("alice-task", "true"), auth=("alice", "alice-pw"))
    bobs = create(basic_server, shell("bob-task", "true"), auth=("bob", "bob-pw"))
    tab = Page(browser, basic_server.url, tmp_path)
    try:
        page = tab.open("/dashboard/")
        expect(page.locator(".status .error")).to_contain_text("Unauthorized")
        page.locator(".status .error a", has_text="Sign in").click()
        expect(page.locator("#auth-mode")).to_contain_text("user name and password")

        page.get_by_label("User name").fill("alice")
        page.get_by_label("Password").fill("wrong")
        page.locator("#basic-login button").click()
        expect(page.locator("#login-result .error")).to_contain_text("Basic credentials refused")

        page.get_by_label("Password").fill("alice-pw")
        page.locator("#basic-login button").click()
        page.wait_for_url(f"{basic_server.url}/dashboard/")
        expect(page.locator("#user")).to_have_text("alice")
        expect(page.locator("#task-rows tr[data-task-id]")).to_have_count(1)
        assert row_ids(page) == [alices]

        # Another user's task is not found, exactly as the API answers.
        page.goto(f"{basic_server.url}/dashboard/tasks/{bobs}")
        expect(page.locator(".status .error")).to_contain_text("Not Found")
        page.goto(f"{basic_server.url}/dashboard/tasks/{alices}")
        expect(page.locator("#task-state")).to_have_text("COMPLETE")

        page.locator("#sign-out").click()
        page.goto(f"{basic_server.url}/dashboard/")
        expect(page.locator(".status .error")).to_contain_text("Unauthorized")
    finally:
        tab.close()


def test_screenshots_of_the_list_a_task_and_the_submit_form(tab: Page, server: LiveServer) -> None:
    # A tag of their own keeps the other tests' tasks out of the picture (and shows a filter).
    def tags(project: str) -> dict[str, str]:
        return {"demo": project}

    done = create(server, shell("align-sample-A", "echo aligned 1204 reads", tags=tags("rnaseq")))
    create(server, shell("align-sample-B", "echo oops >&2; exit 2", tags=tags("rnaseq")))
    create(server, shell("index-genome", "sleep 120", tags=tags("genome")))
    out = f"{server.files.as_uri()}/counts.tsv"
    shown = create(
        server,
        shell(
            "count-features",
            "echo counting features; printf 'gene\\t42\\n' > /data/out/counts.tsv; echo done",
            outputs=[{"path": "/data/out/counts.tsv", "url": out}],
            inputs=[{"path": "/data/in/genes.txt", "content": "BRCA1\nTP53\n"}],
            tags=tags("rnaseq"),
        ),
    )
    wait_for(server, done, FINAL)
    wait_for(server, shown, FINAL)
    page = tab.open("/dashboard/?tag_key=demo")
    expect(page.locator(".counts")).to_contain_text("all 4")
    expect(page.locator(".counts")).to_contain_text("COMPLETE")
    tab.screenshot("dashboard-list.png")
    page = tab.open(f"/dashboard/tasks/{shown}")
    expect(page.locator("#task-state")).to_have_text("COMPLETE")
    tab.screenshot("dashboard-task.png", full_page=True)
    page = tab.open("/dashboard/submit")
    example = json.loads(page.locator("#task-json").input_value())
    example["executors"][0]["workdir"] = "work"
    page.locator("#task-json").fill(json.dumps(example, indent=2))
    page.get_by_role("button", name="Submit task").click()
    expect(page.locator("#submit-result .error")).to_be_visible()
    page.locator("#task-json").evaluate("editor => { editor.scrollTop = 0; }")
    tab.screenshot("dashboard-submit.png")
    for name in ("dashboard-list.png", "dashboard-task.png", "dashboard-submit.png"):
        assert (tab.shots / name).stat().st_size > 1000
