"""Prepared token corpora: every source kind decodes back to its documents, zstd and plain twins give
the same bytes, worker count changes nothing, the split is by document, windows read what is on disk,
and every bad input fails in one line with exit code 2 through the real command line."""

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from trainer.corpus import CorpusError, PrepareConfig, open_corpus, prepare_corpus
from trainer.corpus import prepare as prepare_module
from trainer.corpus.documents import STDLIB_EXCLUDED_FOLDERS, stdlib_source
from trainer.corpus.format import held_out
from trainer.corpus.zstd_frames import first_incomplete_frame
from trainer.tokenizer import EOT, FILE_SHA256, load_tokenizer, package_data_dir

DOCUMENTS = [f"Document {i}: naïve café 🤖 {'lorem ipsum ' * (i % 7)}\n    def f{i}(): return {i}\n" for i in range(60)]


def prepare(source, out, **options) -> tuple:
    """(corpus folder, manifest) of `source` prepared in-process, without a progress bar."""
    prepared = prepare_corpus(PrepareConfig(source=str(source), out=str(out), **options), progress=False)
    return prepared.folder, prepared.manifest


def split_documents(path) -> list:
    """The documents of a .bin file: its tokens cut after each EOT, decoded; checks it ends in an EOT."""
    tokens = np.fromfile(path, dtype="<u2")
    assert tokens.size == 0 or tokens[-1] == EOT
    ends = np.flatnonzero(tokens == EOT)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [load_tokenizer().decode(tokens[a:b]) for a, b in zip(starts, ends)]


def read_bytes(folder, name) -> bytes:
    with open(os.path.join(folder, name), "rb") as f:
        return f.read()


def write_jsonl(path, documents, field="text") -> bytes:
    data = "".join(json.dumps({"id": i, field: text}) + "\n" for i, text in enumerate(documents)).encode()
    path.write_bytes(data)
    return data


def test_jsonl_zst_prepares_to_the_same_bytes_as_its_uncompressed_twin(tmp_path):
    data = write_jsonl(tmp_path / "docs.jsonl", DOCUMENTS + [""])
    half = len(data) // 2  # two zstd frames, cut mid-line: the reader must continue across frames
    compressor = zstandard.ZstdCompressor(level=3)
    (tmp_path / "docs.jsonl.zst").write_bytes(compressor.compress(data[:half]) + compressor.compress(data[half:]))
    plain_folder, plain = prepare(tmp_path / "docs.jsonl", tmp_path / "plain", validation_fraction=0.3)
    packed_folder, packed = prepare(tmp_path / "docs.jsonl.zst", tmp_path / "packed", validation_fraction=0.3)
    for name in ("train.bin", "validation.bin"):
        assert read_bytes(plain_folder, name) == read_bytes(packed_folder, name)
    assert plain.splits == packed.splits and plain.corpus_id == packed.corpus_id
    assert (plain.source.kind, packed.source.kind) == ("jsonl", "jsonl.zst") and packed.source.empty_documents == 1
    held = [held_out(0, i, 0.3) for i in range(len(DOCUMENTS))]
    assert split_documents(os.path.join(packed_folder, "train.bin")) == [d for d, h in zip(DOCUMENTS, held) if not h]


def test_text_folder_decodes_back_to_its_files_in_sorted_order(tmp_path):
    files = {"b.txt": "second file\n", "a/z.md": "# first, in a/\n", "a/y.py": "print('hé')\n", "c.txt": "日本語"}
    for name, text in files.items():
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / name).write_text(text, encoding="utf-8")
    (tmp_path / "src" / "ignored.csv").write_text("not,a,document")
    (tmp_path / "src" / ".hidden").mkdir()
    (tmp_path / "src" / ".hidden" / "secret.txt").write_text("skipped")
    folder, manifest = prepare(tmp_path / "src", tmp_path / "out", validation_fraction=0)
    assert split_documents(os.path.join(folder, "train.bin")) == [files[name] for name in sorted(files)]
    assert manifest.splits.train.text_bytes == sum(len(text.encode()) for text in files.values())
    assert manifest.splits.validation.tokens == 0 and manifest.source.files == 4
    assert os.path.basename(folder) == manifest.corpus_id and manifest.corpus_id.startswith("src-")


def test_parquet_column_decodes_back_to_its_rows(tmp_path):
    bodies = DOCUMENTS[:20] + [None, ""]
    pq.write_table(pa.table({"id": list(range(len(bodies))), "body": bodies}), tmp_path / "docs.parquet",
                   row_group_size=7)
    folder, manifest = prepare(tmp_path / "docs.parquet", tmp_path / "out", column="body", validation_fraction=0)
    assert split_documents(os.path.join(folder, "train.bin")) == DOCUMENTS[:20]
    assert manifest.source.empty_documents == 2 and manifest.splits.train.documents == 20


def test_output_bytes_do_not_depend_on_the_worker_count(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare_module, "CHUNK_TEXT_BYTES", 512)  # many chunks in flight at once
    write_jsonl(tmp_path / "docs.jsonl", DOCUMENTS * 4)
    one, first = prepare(tmp_path / "docs.jsonl", tmp_path / "one", workers=1, validation_fraction=0.2)
    two, second = prepare(tmp_path / "docs.jsonl", tmp_path / "two", workers=2, validation_fraction=0.2)
    assert first.corpus_id == second.corpus_id and first.splits == second.splits
    for name in ("train.bin", "validation.bin"):
        assert read_bytes(one, name) == read_bytes(two, name)


def test_validation_split_is_by_document_and_deterministic(tmp_path):
    write_jsonl(tmp_path / "docs.jsonl", DOCUMENTS)
    folder, manifest = prepare(tmp_path / "docs.jsonl", tmp_path / "a", validation_fraction=0.25, seed=5)
    expected = [text for i, text in enumerate(DOCUMENTS) if held_out(5, i, 0.25)]
    assert 0 < len(expected) < len(DOCUMENTS)
    assert split_documents(os.path.join(folder, "validation.bin")) == expected
    assert manifest.splits.validation.documents == len(expected)
    again, _ = prepare(tmp_path / "docs.jsonl", tmp_path / "b", validation_fraction=0.25, seed=5)
    assert read_bytes(folder, "validation.bin") == read_bytes(again, "validation.bin")
    other, _ = prepare(tmp_path / "docs.jsonl", tmp_path / "c", validation_fraction=0.25, seed=6)
    assert split_documents(os.path.join(other, "validation.bin")) != expected


def test_preparing_again_keeps_a_finished_corpus_and_repairs_a_damaged_one(tmp_path):
    write_jsonl(tmp_path / "docs.jsonl", DOCUMENTS)
    config = PrepareConfig(source=str(tmp_path / "docs.jsonl"), out=str(tmp_path / "out"))
    first = prepare_corpus(config, progress=False)
    second = prepare_corpus(config, progress=False)
    assert (first.already_present, second.already_present) == (False, True) and first.folder == second.folder
    assert sorted(os.listdir(tmp_path / "out")) == [first.manifest.corpus_id]
    original = read_bytes(first.folder, "train.bin")
    with open(os.path.join(first.folder, "train.bin"), "r+b") as f:
        f.write(b"\xff\xff")
    repaired = prepare_corpus(config, progress=False)
    assert not repaired.already_present and read_bytes(repaired.folder, "train.bin") == original


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("corpus")
    write_jsonl(tmp_path / "docs.jsonl", DOCUMENTS * 3)
    folder, _ = prepare(tmp_path / "docs.jsonl", tmp_path / "out", validation_fraction=0.2)
    return open_corpus(folder)


def test_windows_and_window_tokens_agree_with_a_direct_read(corpus):
    context = 16
    for split in ("train", "validation"):
        stream = np.fromfile(os.path.join(corpus.folder, f"{split}.bin"), dtype="<u2")
        windows = corpus.windows(split, context)
        assert windows == (len(stream) - 1) // context > 0
        assert corpus.dropped_tokens(split, context) == len(stream) - 1 - windows * context < context
        ids = [windows - 1, 0, 3, 3, windows // 2]
        expected = np.stack([stream[w * context: w * context + context + 1] for w in ids])
        got = corpus.window_tokens(split, ids, context)
        assert got.dtype == np.uint16 and np.array_equal(got, expected)
        assert corpus.bytes_per_token(split) == corpus.manifest.split(split).text_bytes / len(stream)
    blocks = corpus.blocks("train", context, block_windows=10)
    assert blocks[0][0] == 0 and blocks[-1][1] == corpus.windows("train", context)
    assert all(a[1] == b[0] and b[1] - b[0] <= 10 for a, b in zip(blocks, blocks[1:]))
    assert corpus.vocab_size == 50257 and len(corpus.digest) == 64
    with pytest.raises(CorpusError, match="window ids must lie in"):
        corpus.window_tokens("train", [corpus.windows("train", context)], context)


def test_a_pickled_corpus_carries_no_tokens(corpus):
    import pickle

    corpus.tokens("train")
    copy = pickle.loads(pickle.dumps(corpus))
    assert len(pickle.dumps(corpus)) < 20_000 and copy.digest == corpus.digest
    assert np.array_equal(copy.window_tokens("train", [1], 8), corpus.window_tokens("train", [1], 8))


def test_open_corpus_refuses_a_damaged_token_file(corpus, tmp_path):
    copy = shutil.copytree(corpus.folder, tmp_path / corpus.id)
    data = bytearray((copy / "train.bin").read_bytes())
    data[10] ^= 1
    (copy / "train.bin").write_bytes(bytes(data))
    with pytest.raises(CorpusError, match="does not match its manifest"):
        open_corpus(str(copy))


def zstd_variants() -> dict:
    """The same text as one frame, with a checksum, streamed without a content size, in two frames,
    and behind a skippable frame."""
    data = "".join(DOCUMENTS * 50).encode()
    streamed = io.BytesIO()
    with zstandard.ZstdCompressor(write_checksum=True).stream_writer(streamed, closefd=False) as writer:
        for start in range(0, len(data), 5000):
            writer.write(data[start:start + 5000])
    one = zstandard.ZstdCompressor().compress(data)
    return {"one frame": one, "checksum": zstandard.ZstdCompressor(write_checksum=True).compress(data),
            "streamed": streamed.getvalue(), "two frames": one + zstandard.ZstdCompressor().compress(data[:99]),
            "skippable frame": (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"12345" + one}


@pytest.mark.parametrize("variant", sorted(zstd_variants()))
def test_zstd_frame_walk_accepts_whole_files_and_finds_every_cut(tmp_path, variant):
    data = zstd_variants()[variant]
    path = tmp_path / "d.zst"
    path.write_bytes(data)
    assert first_incomplete_frame(str(path)) == ""
    for cut in (1, 4, 6, len(data) // 3, len(data) - 5, len(data) - 1):
        path.write_bytes(data[:cut])
        assert "the file is truncated" in first_incomplete_frame(str(path)), cut
    path.write_bytes(data + b"junk")
    assert first_incomplete_frame(str(path)) == f"no zstd frame starts at byte {len(data):,}"


def run_prepare(*arguments) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainer.data", "prepare", *map(str, arguments)],
                          capture_output=True, text=True, timeout=300)


def tampered_tokenizer(tmp_path) -> str:
    folder = tmp_path / "tokenizer"
    folder.mkdir()
    for name in FILE_SHA256:
        shutil.copy(os.path.join(package_data_dir(), name), folder / name)
    with open(folder / "vocab.bpe", "ab") as f:
        f.write(b"x")
    return str(folder)


def truncated_zstd(path):
    """A download cut short: zstandard's stream_reader alone would read it as fewer documents, no error."""
    data = zstandard.ZstdCompressor().compress("".join(json.dumps({"text": t}) + "\n" for t in DOCUMENTS).encode())
    path.write_bytes(data[: len(data) - 100])
    return path


BAD_INPUTS = {
    "missing path": (lambda tmp: [tmp / "nowhere"], "does not exist: give a text file"),
    "folder without text files": (lambda tmp: [(tmp / "data.csv").write_text("a,b") and tmp],
                                  "holds no *.txt, *.md or *.py files"),
    "empty text file": (lambda tmp: [(tmp / "empty.txt").write_text("") or tmp / "empty.txt"], "holds no text"),
    "missing field": (lambda tmp: [write_jsonl(tmp / "d.jsonl", ["x"], field="content") and tmp / "d.jsonl"],
                      "field 'text' is missing from line 1 of"),
    "missing column": (lambda tmp: [pq.write_table(pa.table({"body": ["x"]}), tmp / "d.parquet") or tmp / "d.parquet",
                                    "--column", "text"], "its columns are body; pass --column NAME"),
    "undecodable zstd": (lambda tmp: [(tmp / "d.jsonl.zst").write_bytes(b"not zstd at all" * 10) and tmp / "d.jsonl.zst"],
                         "is not valid zstd data"),
    "line that is not JSON": (lambda tmp: [(tmp / "d.jsonl").write_text('{"text": "a"}\n{"text": \n') and tmp / "d.jsonl"],
                              "line 2 of"),
    "truncated zstd": (lambda tmp: [truncated_zstd(tmp / "d.jsonl.zst")], "ends inside a frame"),
    "bad --split-at pattern": (lambda tmp: [(tmp / "a.txt").write_text("a\nb\n") and tmp / "a.txt", "--split-at", "(["],
                               "--split-at '([' is not a regular expression"),
    "one document, nothing to hold out": (lambda tmp: [(tmp / "a.txt").write_text("a\nb\n") and tmp / "a.txt",
                                                       "--validation-fraction", "0.05"],
                                          "the validation split got none of its 1 document(s): cut the source into "
                                          "more documents with --split-at REGEX"),
    "tampered tokenizer file": (lambda tmp: [write_jsonl(tmp / "d.jsonl", ["x"]) and tmp / "d.jsonl",
                                             "--tokenizer-files", tampered_tokenizer(tmp)],
                                f"expected {FILE_SHA256['vocab.bpe']}: it is not GPT-2's vocab.bpe"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_in_one_line_with_exit_code_2(tmp_path, case):
    make_arguments, expected = BAD_INPUTS[case]
    (tmp_path / "in").mkdir()
    run = run_prepare(*make_arguments(tmp_path / "in"), "--out", tmp_path / "out", "--workers", 1)
    assert run.returncode == 2, run.stderr
    assert run.stdout == "" and run.stderr.count("\n") == 1 and expected in run.stderr, run.stderr
    assert not os.path.exists(tmp_path / "out") or os.listdir(tmp_path / "out") == []


def test_split_at_cuts_a_file_into_documents_before_each_matching_line(tmp_path):
    articles = [f" = Article {i} = \n\n Text of article {i} , with = Section = inside .\n\n" for i in range(40)]
    (tmp_path / "wiki.txt").write_text("".join(articles), encoding="utf-8")
    folder, manifest = prepare(tmp_path / "wiki.txt", tmp_path / "out", split_at=r"^ = [^=].* = $",
                               validation_fraction=0.2)
    train = split_documents(os.path.join(folder, "train.bin"))
    validation = split_documents(os.path.join(folder, "validation.bin"))
    assert sorted(train + validation) == sorted(articles)
    assert manifest.splits.validation.documents == len(validation) > 0 and len(train) > 0
    assert manifest.config.split_at == r"^ = [^=].* = $" and "cut before lines matching" in manifest.source.description
    whole, _ = prepare(tmp_path / "wiki.txt", tmp_path / "whole", validation_fraction=0)
    assert split_documents(os.path.join(whole, "train.bin")) == ["".join(articles)]


def test_missing_field_error_names_the_fields_that_exist(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", ["x"], field="content")
    run = run_prepare(tmp_path / "d.jsonl", "--out", tmp_path / "out", "--workers", 1)
    assert run.returncode == 2 and "its fields are id, content; pass --field NAME" in run.stderr


def test_stdlib_corpus_prepares_from_the_command_line_without_test_suites(tmp_path):
    source = stdlib_source()
    relative = [os.path.relpath(path, source.path).split(os.sep) for path in source.paths]
    assert len(relative) > 500 and not any(set(parts[:-1]) & set(STDLIB_EXCLUDED_FOLDERS) for parts in relative)
    run = run_prepare("stdlib", "--out", tmp_path, "--max-documents", 40, "--workers", 2, "--validation-fraction", 0.1)
    assert run.returncode == 0, run.stderr
    folder = tmp_path / run.stdout.split()[1].rsplit("/", 1)[1]
    corpus = open_corpus(str(folder))
    assert corpus.manifest.source.kind == "stdlib" and corpus.id.startswith("stdlib-")
    assert corpus.manifest.splits.train.documents + corpus.manifest.splits.validation.documents == 40
    expected = [open(path, encoding="utf-8").read() for path in source.paths[:40]]
    held = [held_out(0, i, 0.1) for i in range(40)]
    assert split_documents(folder / "train.bin") == [text for text, h in zip(expected, held) if not h and text]
