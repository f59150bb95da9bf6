"""ftp:// and ftps:// transfers against pyftpdlib on 127.0.0.1 (a user with a password)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tesk.engine.stages import StageError
from tesk.filer import Filer
from tesk.tes.models import FileType
from tests.fixtures.servers import FtpServer, self_signed_certificate, tls_available
from tests.integration.filer.helpers import make_task, put, random_bytes, tree


@pytest.fixture
def remote_tree(ftp_server: FtpServer) -> dict[str, bytes]:
    files = {
        "runs/r1/reads.fq": random_bytes(70_000),
        "runs/r1/meta/info.json": b"{}",
        "runs/top.txt": b"top",
    }
    for name, data in files.items():
        (ftp_server.root / name).parent.mkdir(parents=True, exist_ok=True)
        (ftp_server.root / name).write_bytes(data)
    (ftp_server.root / "runs/empty").mkdir()
    return {name.removeprefix("runs/"): data for name, data in files.items()}


def test_file_round_trip_is_binary_safe(filer: Filer, ftp_server: FtpServer, volume: Path) -> None:
    data = random_bytes(300_001)
    put(volume, "/data/out.bin", data)
    out = make_task(outputs=[{"url": ftp_server.url("deep/er/out.bin"), "path": "/data/out.bin"}])
    staged = filer.stage_outputs(out, volume, executors_failed=False)
    assert staged.errors == ()
    assert staged.outputs[0].url == ftp_server.url("deep/er/out.bin", credentials=False)
    assert (ftp_server.root / "deep/er/out.bin").read_bytes() == data

    back = make_task(inputs=[{"url": ftp_server.url("deep/er/out.bin"), "path": "/in/back.bin"}])
    assert filer.stage_inputs(back, volume).input_types == (FileType.FILE,)
    assert (volume / "in/back.bin").read_bytes() == data


def test_directory_input_is_found_and_copied_recursively(
    filer: Filer, ftp_server: FtpServer, remote_tree: dict[str, bytes], volume: Path
) -> None:
    task = make_task(inputs=[{"url": ftp_server.url("runs"), "path": "/data/runs"}])
    assert filer.stage_inputs(task, volume).input_types == (FileType.DIRECTORY,)
    assert tree(volume / "data/runs") == remote_tree
    assert (volume / "data/runs/empty").is_dir()


def test_directory_output_is_uploaded_recursively(
    filer: Filer, ftp_server: FtpServer, volume: Path
) -> None:
    put(volume, "/out/a/b/c.bin", b"\x00\xff")
    put(volume, "/out/top.txt", b"t")
    task = make_task(
        outputs=[{"url": ftp_server.url("results"), "path": "/out", "type": "DIRECTORY"}]
    )
    staged = filer.stage_outputs(task, volume, executors_failed=False)
    assert [o.path for o in staged.outputs] == ["/out/a/b/c.bin", "/out/top.txt"]
    assert tree(ftp_server.root / "results") == {"a/b/c.bin": b"\x00\xff", "top.txt": b"t"}


def test_wildcard_outputs(filer: Filer, ftp_server: FtpServer, volume: Path) -> None:
    put(volume, "/out/x1.txt", b"1")
    put(volume, "/out/x2.txt", b"2")
    task = make_task(
        outputs=[{"url": ftp_server.url("w/"), "path": "/out/x?.txt", "path_prefix": "/out/"}]
    )
    staged = filer.stage_outputs(task, volume, executors_failed=False)
    assert [o.url for o in staged.outputs] == [
        ftp_server.url("w/x1.txt", credentials=False),
        ftp_server.url("w/x2.txt", credentials=False),
    ]
    assert tree(ftp_server.root / "w") == {"x1.txt": b"1", "x2.txt": b"2"}


def test_a_wrong_password_fails_without_showing_it(
    filer: Filer, ftp_server: FtpServer, volume: Path
) -> None:
    (ftp_server.root / "f.txt").write_bytes(b"f")
    url = f"ftp://{ftp_server.user}:not-the-pw@127.0.0.1:{ftp_server.port}/f.txt"
    task = make_task(inputs=[{"url": url, "path": "/f.txt"}])
    with pytest.raises(StageError, match="login refused") as caught:
        filer.stage_inputs(task, volume)
    assert f"ftp://127.0.0.1:{ftp_server.port}/f.txt" in str(caught.value)
    assert "not-the-pw" not in str(caught.value)


def test_a_missing_file_is_not_found(filer: Filer, ftp_server: FtpServer, volume: Path) -> None:
    task = make_task(inputs=[{"url": ftp_server.url("nope.txt"), "path": "/f.txt"}])
    with pytest.raises(StageError, match=r"nope\.txt: not found"):
        filer.stage_inputs(task, volume)
    typed = make_task(inputs=[{"url": ftp_server.url("nope.txt"), "path": "/f", "type": "FILE"}])
    with pytest.raises(StageError, match=r"nope\.txt: not found or not accessible"):
        filer.stage_inputs(typed, volume)
    assert not (volume / "f").exists()


def test_credentials_from_netrc(
    filer: Filer,
    ftp_server: FtpServer,
    volume: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {ftp_server.user} password {ftp_server.password}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    (ftp_server.root / "n.txt").write_bytes(b"via netrc")
    task = make_task(inputs=[{"url": ftp_server.url("n.txt", credentials=False), "path": "/n"}])
    filer.stage_inputs(task, volume)
    assert (volume / "n").read_bytes() == b"via netrc"


def test_a_local_file_error_fails_at_once_and_says_so(
    filer: Filer, ftp_server: FtpServer, volume: Path
) -> None:
    (ftp_server.root / "x.txt").write_bytes(b"x")
    (volume / "data").write_bytes(b"a file where the input's directory should be")
    task = make_task(inputs=[{"url": ftp_server.url("x.txt"), "path": "/data/x.txt"}])
    with pytest.raises(StageError) as caught:
        filer.stage_inputs(task, volume)
    message = str(caught.value)
    assert "file exists" in message.lower()
    assert "connection failed" not in message
    assert "tried" not in message


def test_server_down_is_a_stage_error(filer: Filer, closed_port: int, volume: Path) -> None:
    url = f"ftp://127.0.0.1:{closed_port}/x"
    with pytest.raises(StageError, match=f"{url}: connection failed .*tried 3 times"):
        filer.stage_inputs(make_task(inputs=[{"url": url, "path": "/x", "type": "FILE"}]), volume)


@pytest.fixture
def ftps_server(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FtpServer]:
    if not tls_available():
        pytest.skip("pyOpenSSL is not installed (pyftpdlib needs it for FTPS)")
    certificate = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))  # trust the test certificate
    with FtpServer(tmp_path_factory.mktemp("ftps-home"), certificate=certificate) as server:
        yield server


def test_ftps_round_trip(filer: Filer, ftps_server: FtpServer, volume: Path) -> None:
    data = random_bytes(50_000)
    put(volume, "/o/secret.bin", data)
    out = make_task(outputs=[{"url": ftps_server.url("s/secret.bin"), "path": "/o/secret.bin"}])
    assert filer.stage_outputs(out, volume, executors_failed=False).errors == ()
    assert ftps_server.url("").startswith("ftps://")
    assert (ftps_server.root / "s/secret.bin").read_bytes() == data
    back = make_task(inputs=[{"url": ftps_server.url("s"), "path": "/back"}])
    assert filer.stage_inputs(back, volume).input_types == (FileType.DIRECTORY,)
    assert (volume / "back/secret.bin").read_bytes() == data


def test_ftps_refuses_an_untrusted_certificate(
    filer: Filer, ftps_server: FtpServer, volume: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    (ftps_server.root / "x").write_bytes(b"x")
    task = make_task(inputs=[{"url": ftps_server.url("x"), "path": "/x", "type": "FILE"}])
    with pytest.raises(StageError, match="certificate not trusted"):
        filer.stage_inputs(task, volume)
