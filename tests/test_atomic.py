"""The atomic writer: a file appears whole under its name or not at all, leaves no temporary behind,
and its folder is fsynced after the rename so the new name survives a power cut."""

import os
from unittest import mock

import pytest

from generator import atomic
from generator.atomic import TEMP_PREFIX, atomic_path, remove_temporaries, write_bytes_atomically


def test_a_written_file_appears_whole_and_no_temporary_is_left(tmp_path):
    target = tmp_path / "manifest.json"
    write_bytes_atomically(str(target), b"x" * 100_000)
    assert target.read_bytes() == b"x" * 100_000
    assert os.listdir(tmp_path) == ["manifest.json"]


def test_until_the_block_ends_only_the_temporary_exists(tmp_path):
    target = tmp_path / "part-00000.arrow"
    with atomic_path(str(target)) as temporary:
        with open(temporary, "wb") as f:
            f.write(b"half")
        assert not target.exists() and os.path.basename(temporary).startswith(TEMP_PREFIX)
    assert target.read_bytes() == b"half"


def test_a_failure_inside_leaves_neither_the_file_nor_a_temporary_and_an_old_file_intact(tmp_path):
    target = tmp_path / "preview.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_path(str(target)) as temporary:
            with open(temporary, "wb") as f:
                f.write(b"new, but never finished")
            raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["preview.png"]


def test_the_folder_is_fsynced_after_the_rename(tmp_path):
    target = tmp_path / "manifest.json"
    events = []
    real_replace, real_fsync_folder = os.replace, atomic.fsync_folder

    def replace(*args):
        events.append("rename")
        real_replace(*args)

    def fsync_folder(folder):
        events.append(("fsync folder", folder, target.exists()))
        real_fsync_folder(folder)

    with mock.patch.object(atomic.os, "replace", replace), mock.patch.object(atomic, "fsync_folder", fsync_folder):
        write_bytes_atomically(str(target), b"{}")
    assert events == ["rename", ("fsync folder", str(tmp_path), True)]


def test_fsync_folder_really_fsyncs_a_folder_descriptor(tmp_path):
    with mock.patch.object(atomic.os, "fsync", wraps=os.fsync) as fsync:
        atomic.fsync_folder(str(tmp_path))
    assert fsync.call_count == 1


def test_leftover_temporaries_are_removed_and_named(tmp_path):
    (tmp_path / f"{TEMP_PREFIX}123-part-00001.arrow").write_bytes(b"partial")
    (tmp_path / "part-00000.arrow").write_bytes(b"whole")
    assert remove_temporaries(str(tmp_path)) == [f"{TEMP_PREFIX}123-part-00001.arrow"]
    assert os.listdir(tmp_path) == ["part-00000.arrow"]
