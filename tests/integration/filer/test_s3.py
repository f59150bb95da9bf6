"""s3:// transfers against moto_server on 127.0.0.1 (AWS_ENDPOINT_URL set by the fixture)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tesk.config import FilerConfig
from tesk.engine.stages import StageError
from tesk.filer import Filer
from tesk.tes.models import FileType
from tests.fixtures.servers import HttpServer, S3Bucket
from tests.integration.filer.helpers import make_task, put, random_bytes, tree

SLOW_DOWN = (
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)


def test_file_round_trip_is_binary_safe(filer: Filer, s3_bucket: S3Bucket, volume: Path) -> None:
    data = random_bytes(200_003)
    put(volume, "/data/out.bin", data)
    out = make_task(outputs=[{"url": s3_bucket.url("results/out.bin"), "path": "/data/out.bin"}])
    staged = filer.stage_outputs(out, volume, executors_failed=False)
    assert staged.errors == ()
    assert [(o.url, o.size_bytes) for o in staged.outputs] == [
        (s3_bucket.url("results/out.bin"), "200003")
    ]
    assert s3_bucket.get("results/out.bin") == data

    back = make_task(inputs=[{"url": s3_bucket.url("results/out.bin"), "path": "/in/back.bin"}])
    assert filer.stage_inputs(back, volume).input_types == (FileType.FILE,)
    assert (volume / "in/back.bin").read_bytes() == data


def test_large_files_go_up_in_parts(filer: Filer, s3_bucket: S3Bucket, volume: Path) -> None:
    data = random_bytes(11 * 1024 * 1024)  # S3 parts are at least 5 MiB: this makes three
    put(volume, "/data/big.bin", data)
    task = make_task(outputs=[{"url": s3_bucket.url("big.bin"), "path": "/data/big.bin"}])
    assert filer.stage_outputs(task, volume, executors_failed=False).errors == ()
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # the ETag of a three-part upload
    filer.stage_inputs(make_task(inputs=[{"url": s3_bucket.url("big.bin"), "path": "/b"}]), volume)
    assert (volume / "b").read_bytes() == data


def test_directory_input_of_more_than_1000_keys(
    filer: Filer, s3_bucket: S3Bucket, volume: Path
) -> None:
    count = 1_005  # one listing page holds at most 1,000 keys
    expected = {f"{i // 100:02d}/f{i:04d}.txt": str(i).encode() for i in range(count)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda item: s3_bucket.put(f"many/{item[0]}", item[1]), expected.items()))
    task = make_task(inputs=[{"url": s3_bucket.url("many/"), "path": "/in/many"}])
    assert filer.stage_inputs(task, volume).input_types == (FileType.DIRECTORY,)
    assert tree(volume / "in/many") == expected


def test_directory_output(filer: Filer, s3_bucket: S3Bucket, volume: Path) -> None:
    put(volume, "/out/d/a.txt", b"a")
    put(volume, "/out/d/sub/b.bin", b"\x00\x01")
    task = make_task(outputs=[{"url": s3_bucket.url("up"), "path": "/out/d", "type": "DIRECTORY"}])
    staged = filer.stage_outputs(task, volume, executors_failed=False)
    assert staged.errors == ()
    assert [(o.url, o.path, o.size_bytes) for o in staged.outputs] == [
        (s3_bucket.url("up/a.txt"), "/out/d/a.txt", "1"),
        (s3_bucket.url("up/sub/b.bin"), "/out/d/sub/b.bin", "2"),
    ]
    assert s3_bucket.get("up/sub/b.bin") == b"\x00\x01"


def test_types_of_untyped_inputs(filer: Filer, s3_bucket: S3Bucket, volume: Path) -> None:
    s3_bucket.put("d/x.txt", b"x")
    s3_bucket.put("d/sub/y.txt", b"y")
    s3_bucket.put("d/sub/", b"")  # a console-made "folder" marker
    s3_bucket.put("f.txt", b"f")
    task = make_task(
        inputs=[
            {"url": s3_bucket.url("d"), "path": "/d"},
            {"url": s3_bucket.url("f.txt"), "path": "/f.txt"},
            {"url": f"s3://{s3_bucket.name}", "path": "/whole"},
        ]
    )
    staged = filer.stage_inputs(task, volume)
    assert staged.input_types == (FileType.DIRECTORY, FileType.FILE, FileType.DIRECTORY)
    assert tree(volume / "d") == {"x.txt": b"x", "sub/y.txt": b"y"}
    assert tree(volume / "whole") == {"d/x.txt": b"x", "d/sub/y.txt": b"y", "f.txt": b"f"}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"key": "absent.txt"}, "absent.txt: not found"),
        ({"key": "absent.txt", "type": "FILE"}, "absent.txt: not found"),
        ({"key": "absent/", "type": "DIRECTORY"}, "not found \\(no objects under this prefix\\)"),
        ({"bucket": "no-such-bucket-here", "key": "x", "type": "FILE"}, "not found"),
        ({"bucket": "no-such-bucket-here", "key": "x", "type": "DIRECTORY"}, "no such bucket"),
    ],
)
def test_missing_objects_fail_the_stage_naming_the_url(
    filer: Filer, s3_bucket: S3Bucket, volume: Path, item: dict[str, str], message: str
) -> None:
    bucket = item.get("bucket", s3_bucket.name)
    url = f"s3://{bucket}/{item['key']}"
    task = make_task(inputs=[{"url": url, "path": "/x", "type": item.get("type")}])
    with pytest.raises(StageError, match=message) as caught:
        filer.stage_inputs(task, volume)
    assert url in str(caught.value)


def test_keys_that_climb_out_of_the_destination_are_refused(
    filer: Filer, s3_bucket: S3Bucket, volume: Path
) -> None:
    s3_bucket.put("evil/ok.txt", b"ok")
    s3_bucket.put("evil/../../../escaped.txt", b"gotcha")
    task = make_task(inputs=[{"url": s3_bucket.url("evil"), "path": "/data/evil"}])
    with pytest.raises(StageError, match="refusing the remote name"):
        filer.stage_inputs(task, volume)
    assert not list(volume.parent.rglob("escaped.txt"))


def test_wildcard_outputs(filer: Filer, s3_bucket: S3Bucket, volume: Path) -> None:
    put(volume, "/out/s1/r.bam", b"1")
    put(volume, "/out/s2/r.bam", b"2")
    task = make_task(
        outputs=[{"url": s3_bucket.url("bams/"), "path": "/out/s*/r.bam", "path_prefix": "/out/"}]
    )
    staged = filer.stage_outputs(task, volume, executors_failed=False)
    assert [o.url for o in staged.outputs] == [
        s3_bucket.url("bams/s1/r.bam"),
        s3_bucket.url("bams/s2/r.bam"),
    ]
    assert s3_bucket.keys("bams/") == ["bams/s1/r.bam", "bams/s2/r.bam"]


def test_a_file_output_needs_a_key(filer: Filer, s3_bucket: S3Bucket, volume: Path) -> None:
    put(volume, "/o.txt", b"o")
    task = make_task(outputs=[{"url": s3_bucket.url("dir/"), "path": "/o.txt"}])
    errors = filer.stage_outputs(task, volume, executors_failed=False).errors
    assert "names a directory" in errors[0]


@pytest.fixture
def throttling_endpoint(
    http_server: HttpServer, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> HttpServer:
    """A plain HTTP server standing in for S3: it serves GET/HEAD /bucket/key from its root."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", http_server.url().rstrip("/"))
    return http_server


def test_s3_throttling_is_retried(
    config: FilerConfig, throttling_endpoint: HttpServer, volume: Path
) -> None:
    (throttling_endpoint.root / "bkt").mkdir()
    (throttling_endpoint.root / "bkt/obj.bin").write_bytes(b"after throttling")
    throttling_endpoint.fail("bkt/obj.bin", 503, times=2, body=SLOW_DOWN)
    task = make_task(inputs=[{"url": "s3://bkt/obj.bin", "path": "/o", "type": "FILE"}])
    Filer(config).stage_inputs(task, volume)
    assert (volume / "o").read_bytes() == b"after throttling"
    hits = [r for r in throttling_endpoint.requests if r[1].startswith("/bkt/obj.bin")]
    assert len(hits) >= 3


def test_s3_throttling_that_does_not_end_fails_the_stage(
    config: FilerConfig, throttling_endpoint: HttpServer, volume: Path
) -> None:
    throttling_endpoint.fail("bkt/obj.bin", 503, times=100, body=SLOW_DOWN)
    task = make_task(inputs=[{"url": "s3://bkt/obj.bin", "path": "/o", "type": "FILE"}])
    with pytest.raises(StageError, match=r"s3://bkt/obj.bin: 503 .*\(tried 3 times\)"):
        Filer(config).stage_inputs(task, volume)
    assert not (volume / "o").exists()


def test_server_down_is_a_stage_error(
    config: FilerConfig,
    s3_bucket: S3Bucket,
    closed_port: int,
    volume: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port}")
    task = make_task(inputs=[{"url": "s3://b/k", "path": "/k", "type": "FILE"}])
    with pytest.raises(StageError, match=r"s3://b/k: connection failed .*tried 3 times"):
        Filer(config).stage_inputs(task, volume)


def test_unusable_aws_settings_are_a_stage_error(
    config: FilerConfig, s3_bucket: S3Bucket, volume: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    task = make_task(inputs=[{"url": s3_bucket.url("k"), "path": "/k", "type": "FILE"}])
    with pytest.raises(StageError, match=r"the S3 settings cannot be used: .*no-such-profile"):
        Filer(config).stage_inputs(task, volume)
