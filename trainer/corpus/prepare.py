"""Tokenise a source once into OUT/<corpus-id>/: train.bin, validation.bin, then manifest.json.

The main process reads documents in source order, hashes them, decides each one's split
(`held_out`, a function of seed and document index only) and cuts them into chunks of
about CHUNK_TEXT_BYTES of text. A pool of forked worker processes turns each chunk into
two uint16 arrays, documents concatenated with an EOT after each. Chunks are written in
submission order, with at most 2 x workers in flight, so memory stays bounded and the
bytes do not depend on the worker count; with one worker the main process tokenises.
The main process reads, hashes and writes beside the workers, so on N cores the speed-up
over one core is below N: measured by `python -m bench.tokenize`.

The .bin files grow in a staging folder OUT/.tmp-<pid>-<name>/ and are renamed into the
corpus folder once complete (the id needs the token count), the manifest last. A failed
run, or one stopped with Ctrl-C, removes its staging folder; a killed one leaves it
behind, unlisted (it has no manifest), to be deleted by hand. A corpus that already
exists under the same id, its files verified, has the same bytes by construction and is kept.
"""

import collections
import contextlib
import hashlib
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from generator import __version__
from generator.atomic import TEMP_PREFIX, fsync_folder, write_bytes_atomically
from trainer.corpus.documents import DocumentSource, open_source
from trainer.corpus.format import (MANIFEST_NAME, SPLITS, TOKEN_DTYPE, VALIDATION_RULE, CorpusError, CorpusManifest,
                                   PrepareConfig, SourceRecord, SplitRecord, Splits, TokenizerRecord, ValidationRecord,
                                   corpus_format, corpus_id, held_out, load_corpus_manifest, source_name)
from trainer.corpus.reading import open_corpus
from trainer.tokenizer import load_tokenizer

CHUNK_TEXT_BYTES = 1 << 18
"""Text per work item: ~50 ms of tokenising on one core, long beside the cost of sending it, short
enough that the last chunks keep every worker busy."""


@dataclass(frozen=True)
class PreparedCorpus:
    """What `prepare_corpus` made (or found already made)."""

    folder: str
    """The corpus folder OUT/<corpus-id>."""
    manifest: CorpusManifest
    """Its manifest."""
    seconds: float
    """Wall time of the run."""
    already_present: bool
    """True when an identical corpus was already there and was kept."""


class SplitWriter:
    """One split's token file in the staging folder, with its counts and running sha256."""

    def __init__(self, folder: str, name: str):
        self.file = f"{name}.bin"
        self.path = os.path.join(folder, self.file)
        self.stream = open(self.path, "wb")
        self.sha256 = hashlib.sha256()
        self.documents = self.tokens = self.text_bytes = 0

    def append(self, tokens: np.ndarray, documents: int, text_bytes: int) -> None:
        data = tokens.tobytes()
        self.stream.write(data)
        self.sha256.update(data)
        self.tokens += len(tokens)
        self.documents += documents
        self.text_bytes += text_bytes

    def close(self) -> SplitRecord:
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        return SplitRecord(file=self.file, documents=self.documents, tokens=self.tokens, text_bytes=self.text_bytes,
                           bytes=2 * self.tokens, sha256=self.sha256.hexdigest())


def tokenize_chunk(texts: list, validation: list, tokenizer_files: str) -> tuple:
    """(train tokens, validation tokens) of a chunk: each document's tokens then EOT, in order."""
    tokenizer = load_tokenizer(tokenizer_files)
    eot = np.array([tokenizer.eot], dtype=np.uint32)
    pieces = {False: [], True: []}
    for text, held in zip(texts, validation):
        pieces[held] += [tokenizer.encode_array(text), eot]
    return tuple(np.concatenate(pieces[held]).astype(TOKEN_DTYPE) if pieces[held] else np.empty(0, TOKEN_DTYPE)
                 for held in (False, True))


@dataclass
class Chunk:
    """Consecutive documents going to the workers together."""

    texts: list
    """The documents' text, in source order."""
    validation: list
    """For each document, whether it is held out."""
    text_bytes: dict
    """held out (bool) -> UTF-8 bytes of its documents."""


def read_chunks(source: DocumentSource, config: PrepareConfig, digest, counts: collections.Counter):
    """Chunks of non-empty documents with their splits; feeds `digest`, counts empty documents and text read."""
    chunk, size, index = Chunk([], [], {False: 0, True: 0}), 0, 0
    for text in source.documents():
        if not text:
            counts["empty"] += 1
            continue
        data = text.encode("utf-8")
        counts["text_bytes_read"] += len(data)
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
        held = held_out(config.seed, index, config.validation_fraction)
        chunk.texts.append(text)
        chunk.validation.append(held)
        chunk.text_bytes[held] += len(data)
        size += len(data)
        index += 1
        if size >= CHUNK_TEXT_BYTES:
            yield chunk
            chunk, size = Chunk([], [], {False: 0, True: 0}), 0
        if config.max_documents and index >= config.max_documents:
            break
    if chunk.texts:
        yield chunk


def tokenized_in_order(chunks, pool, config: PrepareConfig):
    """(chunk, (train tokens, validation tokens)) for each chunk, in order: on the pool's processes with at
    most two chunks per process in flight, or here when there is no pool."""
    if pool is None:
        for chunk in chunks:
            yield chunk, tokenize_chunk(chunk.texts, chunk.validation, config.tokenizer_files)
        return
    pending, limit = collections.deque(), 2 * config.workers
    for chunk in chunks:
        pending.append((chunk, pool.submit(tokenize_chunk, chunk.texts, chunk.validation, config.tokenizer_files)))
        if len(pending) >= limit:
            chunk, future = pending.popleft()
            yield chunk, future.result()
    while pending:
        chunk, future = pending.popleft()
        yield chunk, future.result()


def worker_pool(workers: int):
    """`workers` forked processes, started now, or a null context for one worker (tokenise in this process).

    Forked, they inherit the tokenizer this process has verified and built, so they start in
    milliseconds. Under fork, ProcessPoolExecutor starts every worker at the first submission,
    so one is made here, before the progress bar starts its monitor thread: nothing forks a
    process that has other threads. A worker that dies breaks the pool with an error, never a hang."""
    if workers == 1:
        return contextlib.nullcontext()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    pool.submit(os.getpid).result()
    return pool


def tokenize_source(source: DocumentSource, config: PrepareConfig, staging: str, progress: bool) -> tuple:
    """Write train.bin and validation.bin into `staging`; return (Splits, documents sha256, empty documents)."""
    writers = {held: SplitWriter(staging, name) for held, name in zip((False, True), SPLITS)}
    digest, counts = hashlib.sha256(), collections.Counter()
    with worker_pool(config.workers) as pool, tqdm(total=None, unit="B", unit_scale=True, unit_divisor=1000,
                                                   desc="tokenising", disable=not progress, dynamic_ncols=True) as bar:
        chunks = read_chunks(source, config, digest, counts)
        for chunk, arrays in tokenized_in_order(chunks, pool, config):
            for held, tokens in zip((False, True), arrays):
                writers[held].append(tokens, sum(v == held for v in chunk.validation), chunk.text_bytes[held])
            bar.update(sum(chunk.text_bytes.values()))
            if source.fraction_read() > 0:  # text expected in all, from the share of the input read so far
                bar.total = max(bar.n, round(counts["text_bytes_read"] / source.fraction_read()))
    splits = Splits(train=writers[False].close(), validation=writers[True].close())
    return splits, digest.hexdigest(), counts["empty"]


def build_manifest(source: DocumentSource, config: PrepareConfig, splits: Splits, documents_sha256: str,
                   empty_documents: int) -> CorpusManifest:
    if splits.train.documents + splits.validation.documents == 0:
        raise CorpusError(f"{config.source} holds no text (every document is empty): give a source with text")
    documents = splits.train.documents + splits.validation.documents
    if config.validation_fraction > 0 and (not splits.validation.documents or not splits.train.documents):
        empty = "validation" if not splits.validation.documents else "train"
        raise CorpusError(f"{config.source}: the {empty} split got none of its {documents} document(s): cut the "
                          f"source into more documents with --split-at REGEX (e.g. '^$' for paragraphs) or change "
                          f"--validation-fraction")
    tokenizer = TokenizerRecord.model_validate(load_tokenizer(config.tokenizer_files).describe())
    validation = ValidationRecord(fraction=config.validation_fraction, seed=config.seed, rule=VALIDATION_RULE)
    identity = {"format": corpus_format().model_dump(), "tokenizer": tokenizer.model_dump(),
                "documents_sha256": documents_sha256, "validation": validation.model_dump()}
    tokens = splits.train.tokens + splits.validation.tokens
    record = SourceRecord(kind=source.kind, path=source.path, description=source.description, files=source.files,
                          empty_documents=empty_documents, documents_sha256=documents_sha256)
    return CorpusManifest(corpus_id=corpus_id(config.source, tokens, identity), format=corpus_format(),
                          ncaforge=__version__, source=record, tokenizer=tokenizer, validation=validation,
                          splits=splits, config=config)


def publish(staging: str, folder: str, manifest: CorpusManifest) -> None:
    """Rename the finished .bin files into `folder`, then write the manifest: each appears whole."""
    os.makedirs(folder, exist_ok=True)
    for split in SPLITS:
        name = manifest.split(split).file
        os.replace(os.path.join(staging, name), os.path.join(folder, name))
    fsync_folder(folder)
    write_bytes_atomically(os.path.join(folder, MANIFEST_NAME), manifest.to_json_bytes())
    fsync_folder(os.path.dirname(folder))


def intact(folder: str) -> bool:
    """Whether `folder` already holds this corpus, manifest and verified files."""
    try:
        open_corpus(folder)
    except CorpusError:
        return False
    return True


def prepare_corpus(config: PrepareConfig, progress: bool = True) -> PreparedCorpus:
    """Tokenise `config.source` into config.out/<corpus-id>/; CorpusError in one line on bad input."""
    started = time.perf_counter()
    load_tokenizer(config.tokenizer_files)  # a damaged tokenizer file stops the run before any work
    source = open_source(config.source, config.field, config.column, config.split_at)
    try:
        os.makedirs(config.out, exist_ok=True)
        staging = os.path.join(config.out, f"{TEMP_PREFIX}{os.getpid()}-{source_name(config.source)}")
        os.makedirs(staging, exist_ok=True)
    except OSError as error:
        raise CorpusError(f"cannot write in {config.out} ({error.strerror}): pass --out a writable folder") from None
    try:
        splits, documents_sha256, empty = tokenize_source(source, config, staging, progress)
        manifest = build_manifest(source, config, splits, documents_sha256, empty)
        folder = os.path.join(config.out, manifest.corpus_id)
        present = intact(folder)
        if present:
            manifest = load_corpus_manifest(folder)
        else:
            publish(staging, folder, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PreparedCorpus(folder, manifest, time.perf_counter() - started, present)
