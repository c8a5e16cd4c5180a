"""Path safety: the catalog opens files inside the shard folder only, and only for reading.

User input never becomes a path by itself. Callers first check a dataset id or a
shard name against the format's patterns and the manifest; these helpers then
resolve every symlink and refuse anything whose real path leaves the real shard
folder. The final open uses O_NOFOLLOW on the resolved path, so a symlink swapped
in after the check is refused too. (A parent folder swapped for a symlink between
the check and the open is not caught; the shard folder belongs to the operator,
who could serve any file anyway.)
"""

import errno
import os
import stat

MISSING = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)  # ELOOP: O_NOFOLLOW met a symlink swapped in after the check


def real_root(shards_dir: str) -> str:
    return os.path.realpath(shards_dir)


def resolve_inside(root: str, path: str) -> str | None:
    """The real path of `path` if it lies strictly inside the real folder `root`, else None."""
    resolved = os.path.realpath(path)
    if os.path.commonpath([root, resolved]) != root or resolved == root:
        return None
    return resolved


def is_direct_child_folder(root: str, path: str) -> bool:
    """A real folder directly under `root` (after resolving symlinks): what a dataset folder must be."""
    resolved = resolve_inside(root, path)
    return resolved is not None and os.path.dirname(resolved) == root and os.path.isdir(resolved)


def open_inside(root: str, path: str):
    """Open a regular file inside `root` read-only (binary). None if it is missing or resolves outside
    `root` (a client cannot tell the two apart); OSError if it is there but cannot be opened (EACCES,
    EIO, ...) or is not a regular file. O_NONBLOCK: opening a FIFO planted under a shard's name must
    not hang the request (it is then refused as not regular)."""
    resolved = resolve_inside(root, path)
    if resolved is None:
        return None
    try:
        fd = os.open(resolved, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        if error.errno in MISSING:
            return None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # checked before fdopen, which refuses a directory itself
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", resolved)
    return os.fdopen(fd, "rb")
