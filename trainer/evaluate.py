"""`python -m trainer.evaluate CHECKPOINT [--data CORPUS_OR_DATASET] [--rows N] [--json]`: validation
loss, perplexity and bits per byte (language), loss per frame beside both baselines (NCA), or both
baselines over whole sequences (Dyck) of any checkpoint.

The numbers come from the trainer's own code: its data plan (trainer.data_plan.plan_data),
its validation set and trainer.validation.evaluate, over the same rows in the same
micro-batches. So on the run's own validation data this reproduces the checkpoint's eval
record in RUN/metrics.jsonl, to float rounding.

Which rows:
- by default, the validation data the checkpoint records (meta data.validation): the
  held-out documents of the run's corpus, or the NCA rules the run held out or its second
  dataset. The training data must still be where the checkpoint says: the plan opens it,
  and NCA baselines count their unigram on its first rows.
- `--data X`: the rows the run would have validated on had it been trained with `--data X`:
  a corpus's validation split, or for NCA shards the last data.holdout_rows rows of X
  (whole rules), the unigram baseline counted on X's other rows.
- `--rows N`: the first N of those rows instead of the run's train.eval_rows.
"""

import argparse
import dataclasses
import json
import os
import sys

import torch

from trainer.baselines import FIRST_SCORED_FRAME
from trainer.checkpoint import CheckpointError
from trainer.config import RunConfig, TrainConfigError
from trainer.data_plan import plan_data
from trainer.loading import LoadedCheckpoint, load_checkpoint
from trainer.sources import DataError, is_corpus
from trainer.validation import evaluate, validation_set


def evaluation_config(checkpoint: LoadedCheckpoint, data: str = "", rows: int | None = None) -> RunConfig:
    """The checkpoint's config with the data to evaluate on (default: its own) and the row count."""
    recorded = checkpoint.meta["data"]
    if data:
        train, validation = data, ""
    else:
        train = recorded["train"]["origin"]
        validation = recorded["validation"]["origin"] if recorded["validation"]["origin"] != train else ""
    config = checkpoint.config
    return dataclasses.replace(config, data=dataclasses.replace(config.data, train=train, validation=validation),
                               train=dataclasses.replace(config.train, eval_rows=rows or config.train.eval_rows))


def check_data_kind(data: str, stage: str) -> None:
    """A corpus for a language checkpoint, NCA shards for an NCA one; DataError naming the mismatch."""
    if os.path.isdir(data) and is_corpus(data) != (stage == "language"):
        wanted = "a token corpus (python -m trainer.data prepare)" if stage == "language" else "NCA shards"
        raise DataError(f"{data} does not fit a {stage!r} checkpoint: give {wanted}")


def evaluate_checkpoint(checkpoint: LoadedCheckpoint, data: str = "", rows: int | None = None) -> dict:
    """The eval record of `checkpoint` on the validation rows of `data` (default: its own)."""
    if data:
        check_data_kind(data, checkpoint.stage)
    config = evaluation_config(checkpoint, data, rows)
    plan = plan_data(config, world=1)
    if plan.train.vocab_size != checkpoint.meta["vocab_size"]:
        raise DataError(f"{config.data.train} has {plan.train.vocab_size} token ids, the checkpoint's model "
                        f"{checkpoint.meta['vocab_size']}: evaluate on data of the same kind")
    validation = validation_set(config, plan)
    device = next(checkpoint.model.parameters()).device
    result = evaluate(checkpoint.model, validation, config.train.micro_batch, device, rank=0, world=1)
    return {"kind": "eval", "checkpoint": checkpoint.folder, "stage": checkpoint.stage, "step": checkpoint.step,
            "tokens": checkpoint.tokens, "validation": validation.origin, **result}


def report_lines(record: dict) -> list:
    """The record as aligned text: the headline numbers, then the loss per frame for NCA."""
    lines = [f"checkpoint  {record['checkpoint']} ({record['stage']}, step {record['step']}, "
             f"{record['tokens']:,} tokens)",
             f"validation  {record['validation']}",
             f"loss        {record['loss']:.4f}",
             f"perplexity  {record['perplexity']:,.2f}"]
    if "bits_per_byte" in record:
        lines.append(f"bits/byte   {record['bits_per_byte']:.4f}")
    if "baselines" in record:
        baselines = record["baselines"]
        context, unigram = baselines["in_context_unigram"], baselines["unigram"]
        lines.append(f"baselines   in-context unigram {context['loss']:.4f}, unigram {unigram['loss']:.4f}")
    if "per_frame" in record:  # NCA; a Dyck row has no frames
        lines.append(f"{'frame':>5}  {'model':>8}  {'in-context':>10}  {'unigram':>8}")
        for frame, losses in enumerate(zip(record["per_frame"], context["per_frame"], unigram["per_frame"]),
                                   start=FIRST_SCORED_FRAME):
            lines.append(f"{frame:>5}  {losses[0]:>8.4f}  {losses[1]:>10.4f}  {losses[2]:>8.4f}")
    return lines


def main(argv=None) -> int:
    from generator.arguments import OneLineParser, positive_int

    parser = OneLineParser(prog="python -m trainer.evaluate", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a checkpoint folder RUN/step-NNNNNNNN")
    parser.add_argument("--data", default="", help="a corpus folder or NCA dataset (folder or catalog URL); "
                                                    "default: the checkpoint's own validation data")
    parser.add_argument("--rows", type=positive_int, help="evaluation rows (default: the run's train.eval_rows)")
    parser.add_argument("--json", action="store_true", help="print the record as one JSON line")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        checkpoint = load_checkpoint(args.checkpoint, device)
        record = evaluate_checkpoint(checkpoint, args.data, args.rows)
    except (CheckpointError, DataError, TrainConfigError) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    print(json.dumps(record, sort_keys=True) if args.json else "\n".join(report_lines(record)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
