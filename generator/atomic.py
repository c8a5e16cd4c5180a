"""Files appear whole or not at all: write to a hidden temporary name, fsync, rename.

A reader (the catalog, a resumed run) never sees a half-written shard, manifest or
picture under its real name, whatever kills the writer. Leftover temporaries all
start with TEMP_PREFIX, so a resumed run can remove them.
"""

import contextlib
import json
import os

TEMP_PREFIX = ".tmp-"


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
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_json_atomically(path: str, document) -> None:
    """Canonical JSON (sorted keys, fixed indent): the same document gives the same bytes."""
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1, sort_keys=True)
        f.write("\n")


def remove_temporaries(folder: str) -> list:
    """Delete what interrupted writers left in `folder`; return the names removed."""
    names = [name for name in os.listdir(folder) if name.startswith(TEMP_PREFIX)]
    for name in names:
        os.remove(os.path.join(folder, name))
    return names
