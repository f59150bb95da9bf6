"""http:// transfers against a real threaded HTTP server on 127.0.0.1 with injected faults."""

from __future__ import annotations

import logging
from ipaddress import ip_network
from pathlib import Path

import pytest

from tesk.config import FilerConfig
from tesk.engine.stages import StageError
from tesk.filer import Filer
from tesk.filer.localfs import PARTIAL_PREFIX
from tesk.tes.models import FileType
from tests.fixtures.servers import HttpServer
from tests.integration.filer.helpers import make_task, put, random_bytes


def stage_one(filer: Filer, url: str, volume: Path, path: str = "/data/in.bin") -> Path:
    filer.stage_inputs(make_task(inputs=[{"url": url, "path": path}]), volume)
    return volume / path.lstrip("/")


def test_get_is_binary_safe_and_keeps_the_query(
    filer: Filer, http_server: HttpServer, volume: Path
) -> None:
    data = random_bytes(1_000_003)
    (http_server.root / "blob.bin").write_bytes(data)
    url = http_server.url("blob.bin?version=3&token=abc")
    staged = filer.stage_inputs(make_task(inputs=[{"url": url, "path": "/data/in.bin"}]), volume)
    assert staged.input_types == (FileType.FILE,)
    assert (volume / "data/in.bin").read_bytes() == data
    assert ("GET", "/blob.bin?version=3&token=abc") in http_server.requests


def test_put_uploads_files_and_directories(
    filer: Filer, http_server: HttpServer, volume: Path
) -> None:
    data = random_bytes(250_000)
    put(volume, "/data/out.bin", data)
    put(volume, "/data/dir/a.txt", b"a")
    put(volume, "/data/dir/sub/b.txt", b"")
    task = make_task(
        outputs=[
            {"url": http_server.url("up/out.bin"), "path": "/data/out.bin"},
            {"url": http_server.url("up/dir"), "path": "/data/dir", "type": "DIRECTORY"},
        ]
    )
    staged = filer.stage_outputs(task, volume, executors_failed=False)
    assert staged.errors == ()
    assert [(o.url, o.size_bytes) for o in staged.outputs] == [
        (http_server.url("up/out.bin"), "250000"),
        (http_server.url("up/dir/a.txt"), "1"),
        (http_server.url("up/dir/sub/b.txt"), "0"),
    ]
    assert (http_server.root / "up/out.bin").read_bytes() == data
    assert (http_server.root / "up/dir/sub/b.txt").read_bytes() == b""


def test_wildcard_outputs_go_to_url_plus_the_path_after_the_prefix(
    filer: Filer, http_server: HttpServer, volume: Path
) -> None:
    put(volume, "/work/res/a.vcf", b"A")
    put(volume, "/work/res/b.vcf", b"BB")
    put(volume, "/work/res/c.log", b"no")
    task = make_task(
        outputs=[
            {"url": http_server.url("calls"), "path": "/work/res/*.vcf", "path_prefix": "/work"}
        ]
    )
    staged = filer.stage_outputs(task, volume, executors_failed=False)
    assert [o.url for o in staged.outputs] == [
        http_server.url("calls/res/a.vcf"),
        http_server.url("calls/res/b.vcf"),
    ]
    assert (http_server.root / "calls/res/b.vcf").read_bytes() == b"BB"
    assert not (http_server.root / "calls/res/c.log").exists()


def test_redirects_are_followed_for_get_and_put(
    filer: Filer, http_server: HttpServer, volume: Path
) -> None:
    (http_server.root / "real.txt").write_bytes(b"moved here")
    http_server.redirect("old.txt", http_server.url("real.txt"), status=301)
    assert stage_one(filer, http_server.url("old.txt"), volume).read_bytes() == b"moved here"

    put(volume, "/data/o.txt", b"put through a redirect")
    http_server.redirect("put-here", "/landed/o.txt", status=302)
    task = make_task(outputs=[{"url": http_server.url("put-here"), "path": "/data/o.txt"}])
    staged = filer.stage_outputs(task, volume, executors_failed=False)
    assert staged.errors == ()
    assert (http_server.root / "landed/o.txt").read_bytes() == b"put through a redirect"
    assert ("PUT", "/landed/o.txt") in http_server.requests


def test_blocked_networks_are_refused_on_every_hop(
    config: FilerConfig, http_server: HttpServer, volume: Path, tmp_path: Path
) -> None:
    # 127.0.0.2 plays the cloud metadata service: loopback, so nothing else is ever reached.
    (tmp_path / "metadata").mkdir()
    with HttpServer(tmp_path / "metadata", host="127.0.0.2") as metadata:
        (metadata.root / "credentials").write_bytes(b"instance role secret")
        filer = Filer(config.model_copy(update={"blocked_networks": [ip_network("127.0.0.2")]}))
        http_server.redirect("in.txt", metadata.url("credentials"))
        with pytest.raises(StageError, match=r"in\.txt.*blocked network 127\.0\.0\.2/32"):
            stage_one(filer, http_server.url("in.txt"), volume)
        put(volume, "/data/o.txt", b"results")
        http_server.redirect("up", metadata.url("stolen"), status=307)
        task = make_task(outputs=[{"url": http_server.url("up"), "path": "/data/o.txt"}])
        staged = filer.stage_outputs(task, volume, executors_failed=False)
        assert len(staged.errors) == 1
        assert "blocked network" in staged.errors[0]
        assert metadata.requests == []
    # Refused for good, not retried as a connection failure.
    assert http_server.requests.count(("GET", "/in.txt")) == 1
    assert http_server.requests.count(("PUT", "/up")) == 1


def test_names_resolving_into_blocked_networks_are_refused(
    config: FilerConfig, http_server: HttpServer, volume: Path
) -> None:
    (http_server.root / "x.txt").write_bytes(b"x")
    blocked = [ip_network("127.0.0.0/8"), ip_network("::1")]
    filer = Filer(config.model_copy(update={"blocked_networks": blocked}))
    with pytest.raises(StageError, match="blocked network"):
        stage_one(filer, f"http://localhost:{http_server.port}/x.txt", volume)
    assert http_server.requests == []


def test_a_local_file_error_fails_at_once_and_says_so(
    filer: Filer, http_server: HttpServer, volume: Path
) -> None:
    (http_server.root / "x.txt").write_bytes(b"x")
    (volume / "data").write_bytes(b"a file where the input's directory should be")
    with pytest.raises(StageError) as caught:
        stage_one(filer, http_server.url("x.txt"), volume, "/data/x.txt")
    assert "connection failed" not in str(caught.value)
    assert "file exists" in str(caught.value).lower()
    assert http_server.requests.count(("GET", "/x.txt")) == 1


def test_503_twice_then_success(filer: Filer, http_server: HttpServer, volume: Path) -> None:
    (http_server.root / "flaky.txt").write_bytes(b"eventually")
    http_server.fail("flaky.txt", 503, times=2)
    assert stage_one(filer, http_server.url("flaky.txt"), volume).read_bytes() == b"eventually"
    assert http_server.requests.count(("GET", "/flaky.txt")) == 3


def test_429_with_retry_after_then_success_on_put(
    filer: Filer, http_server: HttpServer, volume: Path
) -> None:
    put(volume, "/data/o.txt", b"later")
    http_server.fail("o.txt", 429, times=1, retry_after="0")
    http_server.fail("o.txt", 503, times=1, retry_after="not a date")
    task = make_task(outputs=[{"url": http_server.url("o.txt"), "path": "/data/o.txt"}])
    assert filer.stage_outputs(task, volume, executors_failed=False).errors == ()
    assert (http_server.root / "o.txt").read_bytes() == b"later"


def test_persistent_5xx_gives_up_after_the_configured_attempts(
    filer: Filer, config: FilerConfig, http_server: HttpServer, volume: Path
) -> None:
    (http_server.root / "down.txt").write_bytes(b"x")
    http_server.fail("down.txt", 502, times=100)
    with pytest.raises(StageError, match=r"down\.txt: HTTP 502 Bad Gateway \(tried 3 times\)"):
        stage_one(filer, http_server.url("down.txt"), volume)
    assert http_server.requests.count(("GET", "/down.txt")) == config.retry.attempts


def test_not_found_fails_at_once(filer: Filer, http_server: HttpServer, volume: Path) -> None:
    url = http_server.url("absent.txt")
    with pytest.raises(StageError, match=f"{url}: not found \\(HTTP 404 Not Found\\)"):
        stage_one(filer, url, volume)
    assert http_server.requests.count(("GET", "/absent.txt")) == 1


def test_server_down_is_a_stage_error_naming_the_url(
    filer: Filer, closed_port: int, volume: Path
) -> None:
    url = f"http://127.0.0.1:{closed_port}/data/x.txt"
    with pytest.raises(StageError, match=f"{url}: connection failed .*tried 3 times"):
        stage_one(filer, url, volume)
    assert not (volume / "data/in.bin").exists()


def test_a_server_that_stops_answering_times_out_and_is_retried(
    config: FilerConfig, http_server: HttpServer, volume: Path
) -> None:
    (http_server.root / "slow.txt").write_bytes(b"answered at last")
    http_server.stall("slow.txt", seconds=1.0, times=1)
    retry = config.retry.model_copy(update={"timeout_s": 0.2})
    filer = Filer(config.model_copy(update={"retry": retry}))
    assert stage_one(filer, http_server.url("slow.txt"), volume).read_bytes() == b"answered at last"
    assert http_server.requests.count(("GET", "/slow.txt")) == 2


def test_a_server_that_never_answers_fails_with_a_timeout(
    config: FilerConfig, http_server: HttpServer, volume: Path
) -> None:
    http_server.stall("hang.txt", seconds=0.5, times=3)
    retry = config.retry.model_copy(update={"timeout_s": 0.1})
    filer = Filer(config.model_copy(update={"retry": retry}))
    with pytest.raises(StageError, match=r"hang\.txt: timed out \(tried 3 times\)"):
        stage_one(filer, http_server.url("hang.txt"), volume)


def test_a_cut_download_is_retried_and_never_visible_half_done(
    filer: Filer, http_server: HttpServer, volume: Path
) -> None:
    data = random_bytes(400_000)
    (http_server.root / "cut.bin").write_bytes(data)
    http_server.truncate("cut.bin", times=1)
    http_server.drop("cut.bin", times=1)
    assert stage_one(filer, http_server.url("cut.bin"), volume).read_bytes() == data
    assert http_server.requests.count(("GET", "/cut.bin")) == 3


def test_a_download_that_never_completes_leaves_nothing(
    filer: Filer, http_server: HttpServer, volume: Path
) -> None:
    (http_server.root / "cut.bin").write_bytes(random_bytes(100_000))
    http_server.truncate("cut.bin", times=100)
    with pytest.raises(StageError, match=r"cut\.bin"):
        stage_one(filer, http_server.url("cut.bin"), volume)
    assert not (volume / "data/in.bin").exists()
    leftovers = [p.name for p in volume.rglob("*") if p.name.startswith(PARTIAL_PREFIX)]
    assert leftovers == []


def test_url_credentials_authenticate_and_stay_out_of_messages_and_logs(
    filer: Filer, http_server: HttpServer, volume: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tesk")
    http_server.require_basic_auth("alice", "pa55word")
    (http_server.root / "private.txt").write_bytes(b"for alice")
    base = f"http://alice:pa55word@127.0.0.1:{http_server.port}"
    assert stage_one(filer, f"{base}/private.txt", volume).read_bytes() == b"for alice"
    with pytest.raises(StageError) as caught:
        stage_one(
            filer, f"http://alice:wrong-pa55@127.0.0.1:{http_server.port}/private.txt", volume
        )
    assert "HTTP 401" in str(caught.value)
    assert "wrong-pa55" not in str(caught.value)
    assert "pa55" not in caplog.text


def test_http_has_no_directories(filer: Filer, http_server: HttpServer, volume: Path) -> None:
    (http_server.root / "page").write_bytes(b"<html>")
    task = make_task(inputs=[{"url": http_server.url("page"), "path": "/d", "type": "DIRECTORY"}])
    with pytest.raises(StageError, match="HTTP has no directory listing"):
        filer.stage_inputs(task, volume)
    untyped = make_task(inputs=[{"url": http_server.url("page"), "path": "/d"}])
    assert filer.stage_inputs(untyped, volume).input_types == (FileType.FILE,)


def test_a_failed_upload_is_an_error_line_and_the_rest_still_go(
    filer: Filer, http_server: HttpServer, volume: Path
) -> None:
    put(volume, "/data/a.txt", b"a")
    put(volume, "/data/b.txt", b"b")
    http_server.fail("a.txt", 500, times=100)
    task = make_task(
        outputs=[
            {"url": http_server.url("a.txt"), "path": "/data/a.txt"},
            {"url": http_server.url("b.txt"), "path": "/data/b.txt"},
        ]
    )
    staged = filer.stage_outputs(task, volume, executors_failed=True)
    assert [o.path for o in staged.outputs] == ["/data/b.txt"]
    assert len(staged.errors) == 1
    assert "HTTP 500" in staged.errors[0]
    assert (http_server.root / "b.txt").read_bytes() == b"b"
