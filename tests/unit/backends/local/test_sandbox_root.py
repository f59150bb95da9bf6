"""Where a bwrap sandbox makes a task path: host symlinks followed, host directories opened."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tesk.backends.local.sandbox_root import PathRefused, directory_to_open, resolve


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "real" / "dir").mkdir(parents=True)
    (tmp_path / "real" / "file").write_text("x")
    (tmp_path / "relative").symlink_to("real")
    (tmp_path / "absolute").symlink_to(tmp_path / "relative" / "dir")
    (tmp_path / "up").symlink_to("real/dir/..")
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "link").symlink_to("/etc")
    (tmp_path / "loop").symlink_to("loop")
    return tmp_path


def test_host_symlinks_on_the_way_are_followed(tree: Path) -> None:
    assert resolve(f"{tree}/relative/dir/new", []) == f"{tree}/real/dir/new"
    assert resolve(f"{tree}/absolute/new/deeper", []) == f"{tree}/real/dir/new/deeper"
    assert resolve(f"{tree}/up/new", []) == f"{tree}/real/new"
    assert resolve(f"{tree}/real/dir", []) == f"{tree}/real/dir"


def test_nothing_is_resolved_in_the_sandbox_own_directories(tree: Path) -> None:
    # The host's links there are not what the sandbox shows (its private /tmp, a hidden dir).
    assert resolve(f"{tree}/own/link/x", [f"{tree}/own"]) == f"{tree}/own/link/x"
    assert resolve(f"{tree}/own/link/x", []) == "/etc/x"


def test_a_symlink_loop_is_refused(tree: Path) -> None:
    with pytest.raises(PathRefused, match="too many levels of symbolic links"):
        resolve(f"{tree}/loop/x", [])


def test_the_deepest_host_directory_on_the_way_to_a_missing_path_is_opened(tree: Path) -> None:
    assert directory_to_open(f"{tree}/real/dir/new/deeper") == f"{tree}/real/dir"
    assert directory_to_open(f"{tree}/real/new") == f"{tree}/real"


def test_nothing_is_opened_for_a_path_the_host_has_or_a_new_top_level_one(tree: Path) -> None:
    assert directory_to_open(f"{tree}/real/dir") is None
    missing_top = "/tesk-no-such-top-level-dir"
    assert not os.path.lexists(missing_top)
    assert directory_to_open(f"{missing_top}/x") is None


def test_a_path_below_a_host_file_is_refused(tree: Path) -> None:
    with pytest.raises(PathRefused, match=f"{tree}/real/file is a file on the host"):
        directory_to_open(f"{tree}/real/file/x")
    with pytest.raises(PathRefused, match="is a file on the host"):
        directory_to_open(f"{tree}/real/file")
