"""Token corpora in the catalog: a prepared corpus folder served beside the NCA datasets.

`python -m trainer.data prepare` writes OUT/<corpus-id>/ with train.bin, validation.bin and,
last, manifest.json (trainer.corpus.format.CorpusManifest). Put in the shard folder, such a
folder is listed like a dataset, its two .bin files take the place of shards, and a client
rebuilds the folder from the files and the manifest. The catalog and its client read the
manifest with the CorpusManifest model alone (trainer.corpus.format imports no torch).

Only the files the format names are ever served or written: a corpus whose manifest
records other file names is refused, as the manifest's own file records are not
otherwise checked against path tricks ("../x.bin").
"""

import json
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import ValidationError

from generator.format import ManifestError, first_problem
from trainer.corpus.format import FORMAT_NAME, FORMAT_VERSION, SPLITS, CorpusManifest, SplitRecord

NCA_KIND = "nca-shards"
CORPUS_KIND = "token-corpus"
Kind = Literal["nca-shards", "token-corpus", "dyck"]
"""What a catalog entry holds: NCA sequences in Arrow shards, a prepared token corpus, or Dyck
sequences in Arrow shards (generator.dyck)."""

CORPUS_FILE_NAMES = tuple(f"{split}.bin" for split in SPLITS)
"""The only names a corpus's files may have: one per split, in split order."""


@dataclass(frozen=True)
class Corpus:
    """One prepared token corpus: its folder and its parsed manifest."""

    kind: ClassVar[str] = CORPUS_KIND
    id: str
    """The folder name, which is the id in every URL."""
    folder: str
    """Path of the folder: the real shard folder joined with the id."""
    manifest: CorpusManifest
    """The parsed, validated manifest.json."""

    @property
    def files(self) -> list[SplitRecord]:
        """The token files, train then validation."""
        return split_files(self.manifest)

    @property
    def tokens(self) -> int:
        return sum(record.tokens for record in self.files)

    def shard(self, name: str) -> SplitRecord | None:
        """The record of the file named `name`: a corpus's files take the place of a dataset's shards."""
        return next((record for record in self.files if record.file == name), None)


def split_files(manifest: CorpusManifest) -> list[SplitRecord]:
    """The manifest's records of its token files, train then validation."""
    return [manifest.split(split) for split in SPLITS]


def parse_corpus_manifest(data: bytes, where: str) -> CorpusManifest | None:
    """The corpus manifest in `data`; None when the bytes do not claim the token corpus format (not JSON,
    or another format name); ManifestError naming `where` and the problem, in one line, when they claim
    it but break it (another version, a field missing or wrong, files not named train.bin, validation.bin)."""
    try:
        document = json.loads(data)
    except ValueError:
        return None
    fmt = document.get("format") if isinstance(document, dict) else None
    if not isinstance(fmt, dict) or fmt.get("name") != FORMAT_NAME:
        return None
    if fmt.get("version") != FORMAT_VERSION:
        raise ManifestError(f"{where}: format {FORMAT_NAME!r} version {fmt.get('version')!r} is not one this "
                            f"ncaforge reads ({FORMAT_VERSION}): prepare the corpus again with this release")
    try:
        manifest = CorpusManifest.model_validate(document)
    except ValidationError as error:
        raise ManifestError(f"{where}: {first_problem(error)}: the manifest is damaged; prepare the corpus again") from None
    names = tuple(record.file for record in split_files(manifest))
    if names != CORPUS_FILE_NAMES:
        raise ManifestError(f"{where}: the splits' files are {list(names)}, not {list(CORPUS_FILE_NAMES)}: "
                            f"the manifest is damaged; prepare the corpus again")
    return manifest
