"""The Dyck baseline's generator: words as SPEC section 5 defines them, determinism, files that survive a
kill, and one-line errors. Datasets are tiny (hundreds of sequences), made by the real code into tmp folders."""

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from generator.dyck.__main__ import main
from generator.dyck.config import DyckConfig
from generator.dyck.format import FORMAT_NAME, dataset_id, load_dyck_manifest, parse_dyck_manifest
from generator.dyck.words import dyck_sequences, position_draws, sequence_keys
from generator.dyck.writer import make_dataset
from generator.format import MANIFEST_NAME, ManifestError, load_manifest
from tests.conftest import ROOT
from tests.service_datasets import tree_snapshot

SMALL = DyckConfig(sequences=300, sequences_per_shard=128)
"""Three shards: 128, 128 and 44 rows."""


def read_tokens(folder: Path) -> tuple:
    """(sequence ids, (rows, tokens) array) of every shard of a dataset folder, in order, with pyarrow alone."""
    tables = []
    for path in sorted(folder.glob("part-*.arrow")):
        with pa.memory_map(str(path)) as source:
            tables.append(pa.ipc.open_file(source).read_all())
    table = pa.concat_tables(tables)
    tokens = np.stack(table.column("tokens").to_numpy(zero_copy_only=False))
    return table.column("sequence_id").to_numpy(), tokens


def files(folder: Path) -> dict:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def words_of(tokens: np.ndarray, pairs: int) -> tuple:
    """Check one sequence bracket by bracket; return (depth limit reached by each complete word, final depth)."""
    stack, reached, deepest = [], [], 0
    for token in tokens.tolist():
        if token < pairs:
            stack.append(token)
            deepest = max(deepest, len(stack))
        else:
            assert stack, "a closing bracket at depth 0: every word must start with an opening one"
            assert stack.pop() == token - pairs, "a closing bracket must close the pair on top of the stack"
            if not stack:
                reached.append(deepest)
                deepest = 0
    return reached, len(stack)


def test_words_are_balanced_pairs_match_and_depths_stay_within_1_to_16():
    config = DyckConfig()
    tokens = dyck_sequences(config, 0, 200)
    assert tokens.shape == (200, 1025) and tokens.dtype == np.uint16 and int(tokens.max()) < 128
    reached = []
    for row in tokens:
        depths, open_at_the_end = words_of(row, config.pairs)
        reached += depths
        assert open_at_the_end <= 16  # the last word is cut: it may end open, never deeper than 16
    counts = np.bincount(reached, minlength=17)
    assert counts[0] == 0 and len(counts) == 17  # every word reaches depth 1 to 16, none deeper
    assert (counts[1:] > 0).all()  # and each depth occurs (~30 of ~12,800 words reach 16)
    assert 10_000 < len(reached) < 16_000  # mean word ~16 tokens: a cut at depth 1 would be half that


def reference_sequence(config: DyckConfig, sequence_id: int) -> list:
    """SPEC section 5 read literally, one token at a time, with the generator's own draws for this sequence."""
    wants_open, limits, pairs = position_draws(config, sequence_keys(config.seed, np.array([sequence_id])), 0,
                                               config.tokens_per_sequence)
    tokens, stack, limit = [], [], 0
    for t in range(config.tokens_per_sequence):
        if not stack:  # a new word: draw its depth, start with an open
            limit = int(limits[t, 0])
            opening = True
        elif len(stack) == limit:  # at the word's depth limit: close
            opening = False
        else:
            opening = bool(wants_open[t, 0])
        if opening:
            stack.append(int(pairs[t, 0]))
            tokens.append(stack[-1])
        else:
            tokens.append(config.pairs + stack.pop())
    return tokens


@pytest.mark.parametrize("config", [DyckConfig(), DyckConfig(tokens_per_sequence=300, pairs=3, max_depth=4, p_open=0.8,
                                                             seed=2**64 - 1)])
def test_the_batched_walk_equals_a_token_by_token_reference(config):
    ids = [0, 1, 2, 77, 4095, 4096, 10_000]
    batched = dyck_sequences(config, 0, 4097)
    for sequence_id in ids[:-1]:
        assert batched[sequence_id].tolist() == reference_sequence(config, sequence_id), sequence_id
    assert dyck_sequences(config, ids[-1], 1)[0].tolist() == reference_sequence(config, ids[-1])


def test_draws_have_the_configured_distributions():
    config = DyckConfig(p_open=0.3, max_depth=16, pairs=64)
    wants_open, limits, pairs = position_draws(config, sequence_keys(0, np.arange(4096)), 0, 256)
    assert abs(wants_open.mean() - 0.3) < 0.002  # 1M draws: the standard error is 0.0005
    assert limits.min() == 1 and limits.max() == 16 and pairs.min() == 0 and pairs.max() == 63
    assert np.allclose(np.bincount(limits.ravel())[1:] / limits.size, 1 / 16, rtol=0.02)
    assert np.allclose(np.bincount(pairs.ravel()) / pairs.size, 1 / 64, rtol=0.04)


def test_sequences_depend_on_seed_and_id_only_never_on_batching():
    config = DyckConfig(tokens_per_sequence=200)
    whole = dyck_sequences(config, 0, 5000)
    pieces = np.concatenate([dyck_sequences(config, 0, 1), dyck_sequences(config, 1, 4094), dyck_sequences(config, 4095, 905)])
    assert np.array_equal(whole, pieces)
    assert not np.array_equal(whole[:100], dyck_sequences(DyckConfig(tokens_per_sequence=200, seed=1), 0, 100))
    assert len({row.tobytes() for row in whole}) == 5000  # no two sequences alike


def test_a_dataset_of_n_sequences_is_the_first_n_rows_of_the_one_of_2n(tmp_path):
    small = make_dataset(SMALL, str(tmp_path), progress=False)
    large = make_dataset(DyckConfig(sequences=600, sequences_per_shard=128), str(tmp_path), progress=False)
    small_ids, small_tokens = read_tokens(Path(small.dataset_dir))
    large_ids, large_tokens = read_tokens(Path(large.dataset_dir))
    assert small_ids.tolist() == list(range(300)) and large_ids.tolist() == list(range(600))
    assert np.array_equal(small_tokens, large_tokens[:300])
    for name in ("part-00000.arrow", "part-00001.arrow"):  # whole shards are the same files
        assert (Path(small.dataset_dir) / name).read_bytes() == (Path(large.dataset_dir) / name).read_bytes()


def test_the_same_command_gives_the_same_folder_and_byte_identical_files(tmp_path):
    first = make_dataset(SMALL, str(tmp_path / "a"), progress=False)
    second = make_dataset(SMALL, str(tmp_path / "b"), progress=False)
    assert os.path.basename(first.dataset_dir) == os.path.basename(second.dataset_dir) == dataset_id(SMALL)
    assert dataset_id(SMALL).startswith("dyck-300-") and len(dataset_id(SMALL)) == len("dyck-300-") + 12
    assert files(Path(first.dataset_dir)) == files(Path(second.dataset_dir))
    assert sorted(files(Path(first.dataset_dir))) == [MANIFEST_NAME, "part-00000.arrow", "part-00001.arrow",
                                                      "part-00002.arrow", "preview.png"]
    assert dataset_id(DyckConfig(sequences=300, sequences_per_shard=128, seed=1)) != dataset_id(SMALL)


def test_the_manifest_records_the_config_and_every_shard_and_nca_readers_refuse_it(tmp_path):
    folder = Path(make_dataset(SMALL, str(tmp_path), progress=False).dataset_dir)
    manifest = load_dyck_manifest(str(folder))
    assert (folder / MANIFEST_NAME).read_bytes() == manifest.to_json_bytes()
    assert manifest.dyck_config() == SMALL and manifest.format.name == FORMAT_NAME
    assert (manifest.format.vocab_size, manifest.format.tokens_per_sequence) == (128, 1025)
    assert manifest.format.columns == {"sequence_id": "uint64", "tokens": "fixed_size_list<token: uint16 not null>[1025]"}
    assert [(s.rows, s.first_sequence_id) for s in manifest.shards] == [(128, 0), (128, 128), (44, 256)]
    assert (manifest.totals.rows, manifest.totals.tokens) == (300, 300 * 1025)
    for shard in manifest.shards:
        data = (folder / shard.name).read_bytes()
        assert len(data) == shard.bytes and hashlib.sha256(data).hexdigest() == shard.sha256
    with pytest.raises(ManifestError, match="is not 'ncaforge-nca-shards': this is a Dyck dataset"):
        load_manifest(str(folder))  # an NCA reader (verify, the pipeline) never takes Dyck rows for NCA ones
    document = json.loads((folder / MANIFEST_NAME).read_bytes())
    document["totals"]["rows"] = 301
    with pytest.raises(ManifestError, match="totals.rows is 301 but the shards add up to 300"):
        parse_dyck_manifest(json.dumps(document))
    document["format"]["version"] = 2
    with pytest.raises(ManifestError, match="version 2 is not one this ncaforge reads"):
        parse_dyck_manifest(json.dumps(document))


def test_the_preview_shows_the_first_sequences_depth_profiles(tmp_path):
    folder = Path(make_dataset(SMALL, str(tmp_path), progress=False).dataset_dir)
    picture = np.asarray(Image.open(folder / "preview.png").convert("RGB"))
    assert picture.shape[1] == 1025  # one column per token
    panel = picture[14:14 + 64]  # the first sequence: title, then 16 levels of 4 pixels
    depth = np.cumsum(np.where(read_tokens(folder)[1][0] < 64, 1, -1))
    drawn = (panel != 255).any(axis=2).sum(axis=0)  # coloured pixels in each column
    assert np.array_equal(drawn, depth * 4)


def test_a_rerun_of_a_complete_dataset_checks_it_and_writes_nothing(tmp_path, capsys):
    assert main(["--sequences", "300", "--sequences-per-shard", "128", "--out", str(tmp_path), "--no-progress"]) == 0
    before = tree_snapshot(tmp_path)
    capsys.readouterr()
    assert main(["--sequences", "300", "--sequences-per-shard", "128", "--out", str(tmp_path), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"dataset   {tmp_path / dataset_id(SMALL)}"
    assert lines[2] == "status    already complete: checked, nothing written"
    assert tree_snapshot(tmp_path) == before


def test_a_damaged_shard_of_a_complete_dataset_is_restored_to_its_recorded_bytes(tmp_path):
    folder = Path(make_dataset(SMALL, str(tmp_path), progress=False).dataset_dir)
    original = files(folder)
    shard = folder / "part-00001.arrow"
    shard.write_bytes(shard.read_bytes()[:1000])  # truncated, as by a disk fault
    (folder / "preview.png").unlink()
    summary = make_dataset(SMALL, str(tmp_path), progress=False)
    assert summary.already_complete and (summary.written_shards, summary.kept_shards) == (1, 2)
    assert files(folder) == original


def test_a_killed_run_leaves_no_manifest_and_the_same_command_finishes_it_byte_identically(tmp_path):
    arguments = ["--sequences", "4096", "--sequences-per-shard", "64", "--tokens-per-sequence", "257", "--no-progress"]
    reference = Path(make_dataset(DyckConfig(sequences=4096, sequences_per_shard=64, tokens_per_sequence=257),
                                  str(tmp_path / "reference"), progress=False).dataset_dir)
    out = tmp_path / "killed"
    job = subprocess.Popen([sys.executable, "-m", "generator.dyck", *arguments, "--out", str(out)], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = out / reference.name
    deadline = time.monotonic() + 60
    while not (folder / "part-00002.arrow").exists():
        assert job.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.002)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert not (folder / MANIFEST_NAME).exists() and not (folder / "part-00063.arrow").exists()
    names = sorted(path.name for path in folder.glob("part-*.arrow"))
    assert names and all((folder / name).read_bytes() == (reference / name).read_bytes() for name in names)
    (folder / ".tmp-12345-part-00010.arrow").write_bytes(b"half a shard")  # as a kill during a write leaves
    assert main([*arguments, "--out", str(out)]) == 0
    assert files(folder) == files(reference)


@pytest.mark.parametrize("argv, words", [
    (["--sequences", "0"], "argument --sequences: 0 is not positive"),
    (["--tokens", "-5"], "argument --tokens: -5 is not positive"),
    (["--sequences", "3", "--tokens", "3"], "not allowed with argument"),
    (["--p-open", "0"], "argument --p-open: 0 is not strictly between 0 and 1"),
    (["--p-open", "1.5"], "argument --p-open: 1.5 is not strictly between 0 and 1"),
    (["--p-open", "half"], "'half' is not a number"),
    (["--max-depth", "0"], "argument --max-depth: 0 is not positive"),
    (["--pairs", "40000"], "pairs=40000: use at most 32768 so every token fits in uint16"),
    (["--seed", "-1"], "-1 is outside [0, 2^64)"),
])
def test_bad_input_gets_one_line_naming_the_fix_and_exit_code_2(argv, words, tmp_path, capsys):
    try:
        code = main([*argv, "--out", str(tmp_path / "out"), "--no-progress"])
    except SystemExit as exit_:  # argparse exits by itself
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("python -m generator.dyck: error: ")
    assert words in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()  # nothing created


def test_an_out_that_is_a_file_is_refused_in_one_line_by_the_real_process(tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    result = subprocess.run([sys.executable, "-m", "generator.dyck", "--sequences", "3", "--out", str(tmp_path / "taken")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"python -m generator.dyck: error: --out {tmp_path / 'taken'} is a file, "
                                          f"not a folder: give a folder (it is created if missing)"]


def test_the_first_line_of_the_output_names_the_dataset_folder(tmp_path):
    result = subprocess.run([sys.executable, "-m", "generator.dyck", "--tokens", "3000", "--seed", "5", "--out",
                             str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("dataset   ") and first.count(" ") == 3
    folder = Path(first.removeprefix("dataset   "))
    assert folder.parent == tmp_path and (folder / MANIFEST_NAME).is_file()
    assert load_dyck_manifest(str(folder)).totals.rows == math.ceil(3000 / 1024)  # --tokens counts 1024 per row


def test_make_shards_kind_dyck_makes_a_dyck_dataset_and_an_unknown_kind_is_a_make_error(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    checksum = subprocess.run("cat requirements.txt pyproject.toml | cksum", shell=True, cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.split()[0]
    installed = ["-o", f".venv/.installed-{checksum}"]  # the venv as it is: make must not reinstall it for this test
    result = subprocess.run(["make", "--no-print-directory", *installed, "shards", "KIND=dyck", "SEQUENCES=3", "SEED=4",
                             f"OUT={tmp_path}"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    config = DyckConfig(sequences=3, seed=4)
    assert f"dataset   {tmp_path / dataset_id(config)}" in result.stdout.splitlines()
    assert load_dyck_manifest(str(tmp_path / dataset_id(config))).dyck_config() == config
    unknown = subprocess.run(["make", *installed, "shards", "KIND=parquet"], cwd=ROOT, env=environment,
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode != 0 and "KIND=parquet is unknown: use KIND=nca" in unknown.stderr
    default = subprocess.run(["make", "-n", *installed, "shards"], cwd=ROOT, env=environment, capture_output=True,
                             text=True)
    assert "-m generator.pipeline --band 'high'" in default.stdout  # KIND=nca stays the default
