"""Files appear whole or not at all: write to a hidden temporary name, fsync, rename, fsync the folder.

A reader (the catalog, a resumed run) never sees a half-written shard, manifest or
picture under its real name, whatever kills the writer. The folder is fsynced after
the rename because the rename itself lives in the folder's entries: without it a power
cut can lose a file that was already reported written. Leftover temporaries all start
with TEMP_PREFIX, so a resumed run can remove them.
"""

import contextlib
import os

TEMP_PREFIX = ".tmp-"


def fsync_folder(folder: str) -> None:
    """Make the folder's entries (a rename, a new name) durable."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path beside `path`; on success move it to `path`, on failure delete it."""
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f"{TEMP_PREFIX}{os.getpid()}-{name}")
    try:
        yield temporary
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
        fsync_folder(folder)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_bytes_atomically(path: str, data: bytes) -> None:
    with atomic_path(path) as temporary, open(temporary, "wb") as f:
        f.write(data)


def remove_temporaries(folder: str) -> list:
    """Delete what interrupted writers left in `folder`; return the names removed."""
    names = [name for name in os.listdir(folder) if name.startswith(TEMP_PREFIX)]
    for name in names:
        os.remove(os.path.join(folder, name))
    return names
