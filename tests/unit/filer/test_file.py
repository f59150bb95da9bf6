"""file:// transfers: confined to the file roots, links checked, copies finished or absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tesk.engine.cancellation import Cancellation
from tesk.filer.base import TransferError
from tesk.filer.localfs import PARTIAL_PREFIX, partial_file
from tesk.filer.transfers.file import FileTransfer


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    (path / "tree" / "sub").mkdir(parents=True)
    (path / "tree" / "empty").mkdir()
    (path / "tree" / "a.bin").write_bytes(bytes(range(256)) * 4)
    (path / "tree" / "sub" / "b.txt").write_text("b")
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret").write_text("not for tasks")
    return path


@pytest.fixture
def transfer(root: Path) -> FileTransfer:
    return FileTransfer([root], Cancellation())


def test_file_round_trip_is_byte_exact(transfer: FileTransfer, root: Path, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    local = tmp_path / "local.bin"
    local.write_bytes(data)
    transfer.upload_file(local, (root / "up" / "deep" / "x.bin").as_uri())
    transfer.download_file((root / "up" / "deep" / "x.bin").as_uri(), tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data


def test_directory_download_copies_the_tree(
    transfer: FileTransfer, root: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "copy"
    transfer.download_directory((root / "tree").as_uri(), dest)
    assert (dest / "a.bin").read_bytes() == (root / "tree" / "a.bin").read_bytes()
    assert (dest / "sub" / "b.txt").read_text() == "b"
    assert (dest / "empty").is_dir()
    assert transfer.is_directory((root / "tree").as_uri())
    assert not transfer.is_directory((root / "tree" / "a.bin").as_uri())


def test_directory_upload_reports_every_file(transfer: FileTransfer, root: Path) -> None:
    uploaded = transfer.upload_directory(root / "tree", (root / "mirror").as_uri())
    assert [url for url, _ in uploaded] == [
        (root / "mirror" / "a.bin").as_uri(),
        (root / "mirror" / "sub" / "b.txt").as_uri(),
    ]
    assert (root / "mirror" / "sub" / "b.txt").read_text() == "b"


def test_paths_outside_the_roots_are_refused(
    transfer: FileTransfer, outside: Path, tmp_path: Path
) -> None:
    with pytest.raises(TransferError, match="outside the allowed file roots"):
        transfer.download_file((outside / "secret").as_uri(), tmp_path / "x")
    with pytest.raises(TransferError, match="outside the allowed file roots"):
        transfer.upload_file(outside / "secret", (outside / "copy").as_uri())
    assert not (tmp_path / "x").exists()


def test_dotdot_is_refused_even_when_it_stays_inside(
    transfer: FileTransfer, root: Path, tmp_path: Path
) -> None:
    with pytest.raises(TransferError, match=r"'\.\.' is not allowed"):
        transfer.download_file(f"file://{root}/tree/../tree/a.bin", tmp_path / "x")


def test_symlink_escapes_are_refused(
    transfer: FileTransfer, root: Path, outside: Path, tmp_path: Path
) -> None:
    os.symlink(outside / "secret", root / "link-to-secret")
    os.symlink(outside, root / "link-to-dir")
    with pytest.raises(TransferError, match="leads outside the allowed file roots"):
        transfer.download_file((root / "link-to-secret").as_uri(), tmp_path / "x")
    with pytest.raises(TransferError, match="leads outside the allowed file roots"):
        transfer.upload_file(root / "tree" / "a.bin", (root / "link-to-dir" / "planted").as_uri())
    assert not (outside / "planted").exists()


def test_a_tree_linking_outside_is_refused_before_anything_is_copied(
    transfer: FileTransfer, root: Path, outside: Path, tmp_path: Path
) -> None:
    os.symlink(outside / "secret", root / "tree" / "sub" / "zz-escape")
    dest = tmp_path / "copy"
    with pytest.raises(TransferError, match="leads outside the allowed file roots"):
        transfer.download_directory((root / "tree").as_uri(), dest)
    assert not dest.exists()


def test_links_that_stay_inside_are_followed(
    transfer: FileTransfer, root: Path, tmp_path: Path
) -> None:
    os.symlink(root / "tree" / "sub" / "b.txt", root / "alias.txt")
    transfer.download_file((root / "alias.txt").as_uri(), tmp_path / "x")
    assert (tmp_path / "x").read_text() == "b"


def test_missing_source_is_a_clear_error(
    transfer: FileTransfer, root: Path, tmp_path: Path
) -> None:
    with pytest.raises(TransferError, match="not found"):
        transfer.download_file((root / "nope").as_uri(), tmp_path / "x")
    with pytest.raises(TransferError, match="not found"):
        transfer.is_directory((root / "nope").as_uri())
    assert not transfer.exists((root / "nope").as_uri())


def test_partial_file_is_never_seen_under_the_final_name(tmp_path: Path) -> None:
    dest = tmp_path / "result.bin"
    seen: list[Path] = []

    def interrupted_download() -> None:
        with partial_file(dest) as temporary:
            temporary.write_bytes(b"half")
            seen.append(temporary)
            assert not dest.exists()
            raise RuntimeError("connection lost")

    with pytest.raises(RuntimeError, match="connection lost"):
        interrupted_download()
    assert seen[0].name.startswith(PARTIAL_PREFIX)
    assert seen[0].parent == tmp_path
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []
    with partial_file(dest) as temporary:
        temporary.write_bytes(b"whole")
    assert dest.read_bytes() == b"whole"
    assert list(tmp_path.iterdir()) == [dest]
