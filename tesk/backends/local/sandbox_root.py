"""The root of a bwrap sandbox: the host's file system, read-only, with room for a task's paths.

A task may name any absolute path (`/data/x`, `/var/lib/cwl/stg1/x`, `/home/u/work`), and bwrap
must create a mount point there before it can bind the task's directory at it. It cannot create
anything inside a read-only bind of the host, and the host itself must never be written. So the
root is a tmpfs holding read-only binds of the host's top-level entries, and for a path that does
not exist on the host, the deepest host directory on its way is *opened*: a tmpfs of the sandbox
is mounted over it (mounting over a directory of a read-only bind writes nothing), holding
read-only binds of every entry of the host's (symlinks recreated), and the missing rest of the
path is created in it. For `/var/lib/cwl/stg1` on a host with `/var/lib` but no `/var/lib/cwl`,
`/var/lib` is opened: `/var/lib/dpkg` stays visible (read-only), `/var/lib/cwl` is new, and the
rest of `/var` is the host's bind as before. A sandbox without such a path costs what it always
did (the top-level entries); one with costs a bind per entry of each opened directory.

Why not copy-on-write overlays of the host directories (bubblewrap's `--overlay-src` /
`--tmp-overlay`)? They came with bubblewrap 0.9; Debian 12 ships 0.8.0 without them. Where they
exist they need unprivileged overlayfs for an `executor_user` (Linux 5.11 or later, not on every
file system), drop the mounts below the overlaid directory (an overlay of /var loses a
/var/lib/docker that is a file system of its own), and make the whole directory writable (into
memory), where only the task's own paths should be. Read-only binds of the entries work the same
as root and in an unprivileged user namespace, with every bwrap version TESK supports, and a
directory's own mounts come along (binds are recursive).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Collection, Sequence

# The kernel's own limit on symbolic links followed while resolving one path.
_MAX_SYMLINKS = 40


class PathRefused(Exception):
    """A path the sandbox cannot provide; the message says why."""


def _below(path: str, ancestor: str) -> bool:
    """Whether the normalised absolute `path` is `ancestor` or lies inside it."""
    return posixpath.commonpath([path, ancestor]) == ancestor


def resolve(path: str, own: Sequence[str]) -> str:
    """Where `path` leads in the sandbox, following the host's symbolic links on the way.

    The sandbox shows the host's symlinks as they are, so a mount point at `/var/run/x` (with
    `/var/run -> /run` on the host) must be made at `/run/x`, as a container engine would. Below
    the directories in `own` (the sandbox's private /tmp, hidden directories) the host's links
    are not visible and nothing is resolved.
    """
    pending = [part for part in path.split("/") if part]
    current = "/"
    followed = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            current = posixpath.dirname(current)
            continue
        candidate = posixpath.join(current, part)
        if any(_below(candidate, directory) for directory in own):
            return posixpath.normpath(posixpath.join(candidate, *pending))
        if not os.path.islink(candidate):
            current = candidate
            continue
        followed += 1
        if followed > _MAX_SYMLINKS:
            raise PathRefused(f"{path}: too many levels of symbolic links on the host")
        target = os.readlink(candidate)
        pending[:0] = [part for part in target.split("/") if part]
        if target.startswith("/"):
            current = "/"
    return current


def directory_to_open(target: str) -> str | None:
    """The host directory to open so that the missing directory `target` can be created in it.

    `target` is resolved (no host symlinks on its way). None when it exists on the host (a bind
    over it leaves the host's alone) or when its top-level directory does not (the root tmpfs
    takes it).
    """
    deepest = "/"
    for part in target.strip("/").split("/"):
        current = posixpath.join(deepest, part)
        if not os.path.lexists(current):
            return None if deepest == "/" else deepest
        if not os.path.isdir(current):
            raise PathRefused(f"{target} cannot be created: {current} is a file on the host")
        deepest = current
    return None  # it exists


def root_arguments(
    opened: Collection[str], skip: Collection[str], can_enter: Callable[[str], bool]
) -> list[str]:
    """bwrap arguments for the tmpfs root, with the host's entries and the opened directories.

    `skip` holds top-level names the sandbox provides itself (/proc, /dev, /tmp). The entries of
    an opened directory the sandbox's user cannot enter on the host are left out: bwrap, running
    as that user, could not reach them either, and the user could not on the host.
    """
    args = ["--tmpfs", "/", *_entries("/", opened, skip)]
    for directory in sorted(opened):  # a directory sorts before what lies inside it
        args += ["--perms", _mode(directory), "--tmpfs", directory]
        if can_enter(directory):
            args += _entries(directory, opened)
    return args


def _entries(directory: str, opened: Collection[str], skip: Collection[str] = ()) -> list[str]:
    """Read-only binds of the host's entries of `directory`, except the opened ones."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:  # TESK itself cannot list it: the sandbox cannot show what is not known
        return []
    args: list[str] = []
    for name in names:
        path = posixpath.join(directory, name)
        if name in skip or path in opened:
            continue
        try:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
                continue
        except OSError:  # gone since it was listed
            continue
        # -try: an entry removed since it was listed (a busy /var/tmp) must not fail the start.
        args += ["--ro-bind-try", path, path]
    return args


def _mode(directory: str) -> str:
    """The host directory's permission bits, for the sandbox's directory in its place."""
    try:
        return f"{os.stat(directory).st_mode & 0o7777:04o}"
    except OSError:
        return "0755"
