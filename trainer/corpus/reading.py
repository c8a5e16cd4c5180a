"""A prepared corpus for training: verified once, then read lazily through memory maps.

A split's token stream is cut into consecutive windows of context + 1 tokens at stride
context: window w is tokens [w * context, w * context + context + 1), inputs its first
context tokens, targets its last. So every token after the first is a target exactly
once per epoch, and windows cross document boundaries (the EOT between documents is
seen, as GPT-2 trained). The tail that does not fill a window is dropped: at most
context - 1 targets per split (`dropped_tokens`). At context 1024 on the stdlib corpus
that is under 0.02% of its 5.6M training tokens, but up to 7% of the 15k tokens of its
validation split at the default 1% of documents (a larger --validation-fraction fixes that).

Window ids play the part of the NCA stage's rows: `blocks` cuts them into ranges of
block_windows consecutive windows, which trainer.order shuffles as it shuffles record
batches, then windows within a shuffle window of blocks. Nothing reads a whole file: a
window is a slice of the memory map, and a pickled TokenCorpus (a DataLoader worker's
copy) re-maps the files instead of carrying their tokens.
"""

import hashlib
import json
import os

import numpy as np

from generator.shards import file_sha256
from trainer.corpus.format import SPLITS, TOKEN_DTYPE, CorpusError, CorpusManifest, load_corpus_manifest
from trainer.order import record_blocks


class TokenCorpus:
    """The train and validation token streams of one prepared corpus."""

    def __init__(self, folder: str, manifest: CorpusManifest):
        self.folder, self.manifest = folder, manifest
        self._maps = {}

    def __getstate__(self) -> dict:
        return {"folder": self.folder, "manifest": self.manifest, "_maps": {}}

    @property
    def id(self) -> str:
        return self.manifest.corpus_id

    @property
    def digest(self) -> str:
        """sha256 of the corpus identity (id and each file's sha256): seeds the data order."""
        files = [[record.file, record.sha256] for record in (self.manifest.split(s) for s in SPLITS)]
        return hashlib.sha256(json.dumps({"corpus_id": self.id, "files": files}).encode()).hexdigest()

    @property
    def vocab_size(self) -> int:
        return self.manifest.tokenizer.vocab_size

    def tokens(self, split: str) -> np.ndarray:
        """The split's whole token stream as a read-only memory map (uint16)."""
        if split not in self._maps:
            record = self.manifest.split(split)
            path = os.path.join(self.folder, record.file)
            self._maps[split] = (np.memmap(path, dtype=TOKEN_DTYPE, mode="r") if record.tokens
                                 else np.empty(0, dtype=TOKEN_DTYPE))
        return self._maps[split]

    def windows(self, split: str, context: int) -> int:
        """Training windows of context + 1 tokens at stride context in the split."""
        return max(self.manifest.split(split).tokens - 1, 0) // context

    def dropped_tokens(self, split: str, context: int) -> int:
        """Tokens of the split that are never a target: the tail after the last whole window."""
        return max(self.manifest.split(split).tokens - 1, 0) - self.windows(split, context) * context

    def window_tokens(self, split: str, window_ids, context: int) -> np.ndarray:
        """(len(window_ids), context + 1) uint16 tokens of the given windows, in that order."""
        ids = np.asarray(window_ids, dtype=np.int64)
        windows = self.windows(split, context)
        if ids.size and (ids.min() < 0 or ids.max() >= windows):
            raise CorpusError(f"window ids must lie in [0, {windows}) for split {split!r} at context {context}")
        starts = ids * context
        return np.asarray(self.tokens(split)[starts[:, None] + np.arange(context + 1)], dtype=np.uint16)

    def blocks(self, split: str, context: int, block_windows: int = 1024) -> list:
        """[first, end) window-id ranges of block_windows windows each (the last one shorter)."""
        windows = self.windows(split, context)
        return record_blocks([windows], block_windows, 0, windows)

    def bytes_per_token(self, split: str) -> float:
        """UTF-8 bytes of text per token (EOTs counted as tokens): bits per byte = loss / ln 2 / this."""
        record = self.manifest.split(split)
        return record.text_bytes / record.tokens if record.tokens else 0.0


def open_corpus(folder: str) -> TokenCorpus:
    """A finished corpus folder, its manifest parsed and every .bin file's size and sha256 checked."""
    if not os.path.isdir(folder):
        raise CorpusError(f"{folder} is not a folder: give a corpus folder OUT/<corpus-id> made by "
                          f"python -m trainer.data prepare")
    manifest = load_corpus_manifest(folder)
    for split in SPLITS:
        record = manifest.split(split)
        path = os.path.join(folder, record.file)
        if not os.path.isfile(path) or os.path.getsize(path) != record.bytes or file_sha256(path) != record.sha256:
            raise CorpusError(f"{path} is missing or does not match its manifest (size or sha256): "
                              f"prepare the corpus again with the command in its manifest's config")
    return TokenCorpus(folder, manifest)
