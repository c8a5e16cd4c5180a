"""Token corpora for the language stage: prepared once from text, JSON lines, Parquet or the
Python standard library (`python -m trainer.data prepare`), read by training through memory maps.

    format.py       the folder layout and the typed CorpusManifest (the contract)
    documents.py    documents out of each kind of source, streamed in a fixed order
    zstd_frames.py  whether a .zst file is whole, checked before it is read
    prepare.py      tokenising on every core into train.bin / validation.bin, then the manifest
    reading.py      open_corpus -> TokenCorpus: verified, windows of context + 1 tokens, lazily
"""

from trainer.corpus.format import CorpusError, CorpusManifest, PrepareConfig
from trainer.corpus.prepare import PreparedCorpus, prepare_corpus
from trainer.corpus.reading import TokenCorpus, open_corpus

__all__ = ["CorpusError", "CorpusManifest", "PrepareConfig", "PreparedCorpus", "TokenCorpus", "open_corpus",
           "prepare_corpus"]
