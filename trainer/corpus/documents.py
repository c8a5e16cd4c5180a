"""Documents out of a source, streamed one at a time in a fixed order, never a whole corpus in memory.

- A text file is one document; a folder gives every *.txt, *.md and *.py file below it,
  one document each, in sorted relative-path order (hidden files and folders skipped).
- JSON lines (`.jsonl`, or zstd-compressed `.jsonl.zst` decompressed as a stream through
  zstandard's stream_reader and io.TextIOWrapper, never unpacked to disk): one document
  per line, the string in `--field`. Blank lines are skipped.
- Parquet: one document per row of the string column `--column`, read in record batches.
- `stdlib`: every *.py file of this Python's standard library (sysconfig's 'stdlib' path),
  skipping folders named in STDLIB_EXCLUDED_FOLDERS: the test suites (test/, tests/,
  idlelib/idle_test/, and so ctypes/test, unittest/test, tkinter/test, lib2to3/tests,
  distutils/tests) and any installed packages (site-packages/, dist-packages/). About 12 MB.

`--split-at REGEX` cuts every document further, before each line matching REGEX
(`SplitDocuments`), so one big text file (WikiText, a book) still has documents to hold out.

Every source also says how far through its input it is (`fraction_read`), which the
progress bar turns into an ETA. Problems (nothing there, not UTF-8, a missing field or
column, a damaged zstd stream) are CorpusError in one line naming the fix.

zstandard's stream_reader does not report a frame cut short (it ends the stream quietly),
so a `.jsonl.zst` file is first checked whole by trainer.corpus.zstd_frames.
"""

import io
import json
import os
import platform
import re
import sysconfig

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from trainer.corpus.format import CorpusError
from trainer.corpus.zstd_frames import first_incomplete_frame

TEXT_SUFFIXES = (".txt", ".md", ".py")
STDLIB_EXCLUDED_FOLDERS = ("test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__")
SOURCE_KINDS = ("a text file, a folder of *.txt/*.md/*.py, a .jsonl or .jsonl.zst file (with --field), "
                "a .parquet file (with --column), or stdlib")


class DocumentSource:
    """A stream of documents and what to record about it."""

    kind: str
    """SourceRecord.kind."""
    path: str
    """Absolute path read."""
    description: str
    """What is read, in words."""
    files: int
    """Files read."""

    def documents(self):
        """Each document's text, in source order."""
        raise NotImplementedError

    def fraction_read(self) -> float:
        """Share of the input consumed so far, 0 .. 1 (for the ETA only)."""
        raise NotImplementedError


class TextFiles(DocumentSource):
    """One document per UTF-8 file."""

    def __init__(self, kind: str, root: str, paths: list, description: str):
        self.kind, self.path, self.paths, self.description = kind, root, paths, description
        self.files = len(paths)
        self.total_bytes = sum(os.path.getsize(path) for path in paths) or 1
        self.bytes_read = 0

    def documents(self):
        for path in self.paths:
            with open(path, "rb") as f:
                data = f.read()
            self.bytes_read += len(data)
            try:
                yield data.decode("utf-8")
            except UnicodeDecodeError as error:
                raise CorpusError(f"{path} is not UTF-8 text (byte {error.start}): convert it to UTF-8 "
                                  f"or remove it from the source") from None

    def fraction_read(self) -> float:
        return self.bytes_read / self.total_bytes


class JsonLines(DocumentSource):
    """One document per line: the string in `field`; zstd-compressed when the name ends in .zst."""

    def __init__(self, path: str, field: str):
        self.path, self.field, self.files = path, field, 1
        self.kind = "jsonl.zst" if path.endswith(".zst") else "jsonl"
        self.description = f"JSON lines, field {field!r}" + (", zstd-compressed" if self.kind == "jsonl.zst" else "")
        self.total_bytes = os.path.getsize(path) or 1
        self.raw = None
        problem = first_incomplete_frame(path) if self.kind == "jsonl.zst" else ""
        if problem:
            raise CorpusError(f"{path} is not valid zstd data: {problem}; check it with zstd -t or fetch it again")

    def lines(self):
        with open(self.path, "rb") as self.raw:
            stream = self.raw
            if self.kind == "jsonl.zst":
                stream = zstandard.ZstdDecompressor().stream_reader(self.raw, read_across_frames=True)
            yield from enumerate(io.TextIOWrapper(stream, encoding="utf-8", newline="\n"), start=1)

    def documents(self):
        lines = self.lines()
        try:
            for number, line in lines:
                if line.strip():
                    yield self.text_of(number, line)
        except zstandard.ZstdError as error:
            raise CorpusError(f"{self.path} is not valid zstd data ({error}): check it with zstd -t or fetch it "
                              f"again") from None
        except UnicodeDecodeError as error:
            raise CorpusError(f"{self.path} is not UTF-8 text ({error.reason}): convert it to UTF-8") from None

    def text_of(self, number: int, line: str) -> str:
        try:
            record = json.loads(line)
        except ValueError as error:
            raise CorpusError(f"line {number} of {self.path} is not JSON ({error}): fix or remove that line") from None
        if not isinstance(record, dict) or self.field not in record:
            fields = ", ".join(record) if isinstance(record, dict) else f"none (a JSON {type(record).__name__})"
            raise CorpusError(f"field {self.field!r} is missing from line {number} of {self.path}: its fields are "
                              f"{fields}; pass --field NAME")
        text = record[self.field]
        if text is None:
            return ""
        if not isinstance(text, str):
            raise CorpusError(f"field {self.field!r} on line {number} of {self.path} is a {type(text).__name__}, "
                              f"not a string: pass --field naming a text field")
        return text

    def fraction_read(self) -> float:
        return self.raw.tell() / self.total_bytes if self.raw and not self.raw.closed else 1.0


class ParquetColumn(DocumentSource):
    """One document per row: the string in `column` (null rows count as empty documents)."""

    def __init__(self, path: str, column: str, batch_rows: int = 4096):
        self.kind, self.path, self.column, self.files, self.batch_rows = "parquet", path, column, 1, batch_rows
        self.description = f"Parquet, column {column!r}"
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as error:
            raise CorpusError(f"{path} is not a readable Parquet file ({error}): check the file") from None
        schema = self.file.schema_arrow
        if column not in schema.names:
            raise CorpusError(f"column {column!r} is not in {path}: its columns are {', '.join(schema.names)}; "
                              f"pass --column NAME")
        kind = schema.field(column).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise CorpusError(f"column {column!r} of {path} holds {kind}, not strings: pass --column naming a "
                              f"text column")
        self.rows_read, self.total_rows = 0, self.file.metadata.num_rows or 1

    def documents(self):
        for batch in self.file.iter_batches(batch_size=self.batch_rows, columns=[self.column]):
            for text in batch.column(0).to_pylist():
                self.rows_read += 1
                yield text or ""

    def fraction_read(self) -> float:
        return self.rows_read / self.total_rows


class SplitDocuments(DocumentSource):
    """Another source's documents cut before every line that matches `pattern`."""

    def __init__(self, source: DocumentSource, pattern: str):
        try:
            self.boundary = re.compile(pattern, re.MULTILINE)
        except re.error as error:
            raise CorpusError(f"--split-at {pattern!r} is not a regular expression ({error}): fix the pattern") from None
        self.source, self.kind, self.path, self.files = source, source.kind, source.path, source.files
        self.description = f"{source.description}, cut before lines matching {pattern!r}"

    def documents(self):
        for text in self.source.documents():
            cuts = sorted({match.start() for match in self.boundary.finditer(text)} - {0})
            yield from (text[start:stop] for start, stop in zip([0] + cuts, cuts + [len(text)]))

    def fraction_read(self) -> float:
        return self.source.fraction_read()


def text_files_below(folder: str, suffixes: tuple, excluded_folders: tuple = ()) -> list:
    """Files below `folder` ending in `suffixes`, sorted by relative path; hidden entries and
    folders named in `excluded_folders` skipped."""
    found = []
    for parent, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".") and name not in excluded_folders]
        found += [os.path.join(parent, name) for name in names if name.endswith(suffixes) and not name.startswith(".")]
    return sorted(found, key=lambda path: os.path.relpath(path, folder))


def stdlib_source() -> TextFiles:
    root = sysconfig.get_paths()["stdlib"]
    excluded = ", ".join(f"{name}/" for name in STDLIB_EXCLUDED_FOLDERS)
    return TextFiles("stdlib", root, text_files_below(root, (".py",), STDLIB_EXCLUDED_FOLDERS),
                     f"Python {platform.python_version()} standard library, *.py, skipping folders {excluded}")


def open_source(source: str, field: str, column: str, split_at: str = "") -> DocumentSource:
    """The DocumentSource that `source` names, cut at `split_at` lines when given; CorpusError when it
    does not exist or holds no text files."""
    whole = open_whole_source(source, field, column)
    return SplitDocuments(whole, split_at) if split_at else whole


def open_whole_source(source: str, field: str, column: str) -> DocumentSource:
    """The DocumentSource `source` names, one document per file, line or row."""
    if source == "stdlib":
        return stdlib_source()
    path = os.path.abspath(source)
    if not os.path.exists(path):
        raise CorpusError(f"{source} does not exist: give {SOURCE_KINDS}")
    if os.path.isdir(path):
        paths = text_files_below(path, TEXT_SUFFIXES)
        if not paths:
            raise CorpusError(f"{source} holds no *.txt, *.md or *.py files: give {SOURCE_KINDS}")
        return TextFiles("text", path, paths, "text files *.txt, *.md, *.py, one document each")
    if path.endswith((".jsonl", ".jsonl.zst")):
        return JsonLines(path, field)
    if path.endswith(".parquet"):
        return ParquetColumn(path, column)
    return TextFiles("text", path, [path], "one text file, one document")
