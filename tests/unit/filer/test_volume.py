"""TES paths in the task volume: links resolved inside the volume, wildcard expansion."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tesk.filer.volume import expand_glob, files_below, resolve


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    root = tmp_path / "volume"
    (root / "data" / "in").mkdir(parents=True)
    (root / "data" / "out" / "sub").mkdir(parents=True)
    (root / "data" / "in" / "a.txt").write_text("a")
    (root / "data" / "out" / "r1.txt").write_text("1")
    (root / "data" / "out" / "r2.txt").write_text("22")
    (root / "data" / "out" / "r10.csv").write_text("333")
    (root / "data" / "out" / ".hidden.txt").write_text("h")
    (root / "data" / "out" / "sub" / "deep.txt").write_text("d")
    return root


def test_plain_paths_map_into_the_volume(volume: Path) -> None:
    assert resolve(volume, "/data/in/a.txt") == volume.resolve() / "data/in/a.txt"
    assert resolve(volume, "/data/new/file") == volume.resolve() / "data/new/file"


def test_absolute_links_mean_container_paths(volume: Path) -> None:
    os.symlink("/data/in/a.txt", volume / "data/out/link.txt")
    assert resolve(volume, "/data/out/link.txt") == volume.resolve() / "data/in/a.txt"


def test_relative_links_and_dotdot_stay_in_the_volume(volume: Path) -> None:
    os.symlink("../../../../../../etc/passwd", volume / "data/out/up")
    os.symlink("../in", volume / "data/out/indir")
    assert resolve(volume, "/data/out/up") == volume.resolve() / "etc/passwd"
    assert resolve(volume, "/data/out/indir/a.txt") == volume.resolve() / "data/in/a.txt"
    assert resolve(volume, "/../../etc/shadow") == volume.resolve() / "etc/shadow"


def test_a_link_to_a_host_file_does_not_reach_it(volume: Path, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("host only")
    os.symlink(secret, volume / "data/out/steal")
    target = resolve(volume, "/data/out/steal")
    assert volume.resolve() in target.parents
    assert not target.exists()


def test_link_loops_are_refused(volume: Path) -> None:
    os.symlink("loop2", volume / "data/loop1")
    os.symlink("loop1", volume / "data/loop2")
    with pytest.raises(ValueError, match="too many levels"):
        resolve(volume, "/data/loop1/x")


def test_files_below_lists_every_file_through_links_once(volume: Path) -> None:
    os.symlink("/data/in", volume / "data/out/sub/inputs")
    os.symlink("/data/out", volume / "data/out/sub/cycle")
    files = files_below(volume, "/data/out")
    names = [name for name, _ in files]
    assert names == [
        ".hidden.txt",
        "r1.txt",
        "r10.csv",
        "r2.txt",
        "sub/deep.txt",
        "sub/inputs/a.txt",
    ]
    assert dict(files)["sub/inputs/a.txt"] == volume.resolve() / "data/in/a.txt"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("/data/out/*.txt", ["/data/out/r1.txt", "/data/out/r2.txt"]),
        ("/data/out/r?.txt", ["/data/out/r1.txt", "/data/out/r2.txt"]),
        ("/data/out/r[!2]*", ["/data/out/r1.txt", "/data/out/r10.csv"]),
        ("/data/out/r[0-9][0-9].*", ["/data/out/r10.csv"]),
        ("/data/*/a.txt", ["/data/in/a.txt"]),
        (
            "/data/out/*",
            ["/data/out/r1.txt", "/data/out/r10.csv", "/data/out/r2.txt", "/data/out/sub"],
        ),
        ("/data/out/.*.txt", ["/data/out/.hidden.txt"]),
        ("/data/*.txt", []),
        ("/nowhere/*", []),
    ],
)
def test_wildcards_match_like_a_posix_shell(
    volume: Path, pattern: str, expected: list[str]
) -> None:
    assert expand_glob(volume, pattern) == expected
