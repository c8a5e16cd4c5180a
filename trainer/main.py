"""`torchrun --nproc_per_node=N trainer/main.py`: train a Llama-style model on NCA shards.

    python trainer/main.py --recipe tiny-cpu --data shards/high-8192-9a2f38fed405
    torchrun --nproc_per_node=2 trainer/main.py --recipe tiny-cpu \\
        --data http://127.0.0.1:8000/v1/datasets/high-8192-9a2f38fed405 --train.run_dir runs/tiny
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=HEAD:29500 \\
        --rdzv-conf=read_timeout=60,join_timeout=300 trainer/main.py --recipe paper-1.6b --data URL

The recipe (trainer/recipes/NAME.toml) sets every field of trainer.config.RunConfig;
`--section.field value` overrides any of them (`--model.layers 2`, `--optim.lr 1e-3`).
`--resume` continues from the newest complete checkpoint of the run folder (or starts
fresh when there is none), and refuses a checkpoint of another config or dataset.
Plain `python trainer/main.py` is one process; under torchrun every rank runs this.
Bad input ends in one line naming the problem and the fix, exit code 2. A rank that loses
contact with the others (a node died, hung or lost the network) ends in one line too, exit
code 1; any other failure during training exits 1 with its traceback.
"""

import argparse
import sys

from trainer.config import RECIPES_DIR, TrainConfigError, resolve_config

ALIASES = {"--data": "data.train", "--validation": "data.validation", "--run": "train.run_dir",
           "--steps": "train.steps", "--stage": "stage", "--init-from": "transfer.init_from",
           "--reinit": "transfer.reinit", "--reinit-layers": "transfer.reinit_layers", "--freeze": "transfer.freeze",
           "--freeze-layers": "transfer.freeze_layers", "--rescale": "transfer.rescale"}


def parse_arguments(argv: list) -> tuple:
    """(recipe name, resume flag, [(section.key, text)]) from the command line."""
    from generator.arguments import OneLineParser

    parser = OneLineParser(prog="trainer/main.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog=f"recipes: {RECIPES_DIR}; any --section.field VALUE overrides the recipe")
    parser.add_argument("--recipe", default="tiny-cpu", help="recipe name in trainer/recipes/ or a .toml path")
    parser.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint")
    for flag, key in ALIASES.items():
        parser.add_argument(flag, dest=key, metavar="VALUE", help=f"same as --{key}")
    known, rest = parser.parse_known_args(argv)
    overrides = [(key, value) for key, value in vars(known).items() if key in ALIASES.values() and value is not None]
    index = 0
    while index < len(rest):
        flag = rest[index]
        if not flag.startswith("--") or "." not in flag:
            parser.error(f"unrecognised argument {flag!r}: overrides look like --section.field VALUE")
        if "=" in flag:
            key, value = flag[2:].split("=", 1)
            index += 1
        elif index + 1 < len(rest):
            key, value = flag[2:], rest[index + 1]
            index += 2
        else:
            parser.error(f"{flag} needs a value")
        overrides.append((key, value))
    return known.recipe, known.resume, overrides


def main(argv=None) -> int:
    recipe, resume, overrides = parse_arguments(sys.argv[1:] if argv is None else argv)
    from trainer.checkpoint import CheckpointError
    from trainer.distributed import failed_collective, start_process, stop_process
    from trainer.sources import DataError
    from trainer.training import Trainer

    try:
        config = resolve_config(recipe, overrides)
    except TrainConfigError as error:
        print(f"trainer: error: {error}", file=sys.stderr)
        return 2
    process = None
    try:
        process = start_process(config.train)
        trainer = Trainer(config, process, resume)
        trainer.run()
    except (TrainConfigError, DataError, CheckpointError) as error:
        rank = f"[rank {process.rank}] " if process and process.world > 1 else ""
        print(f"trainer: error: {rank}{error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        reason = failed_collective(error) if process and process.world > 1 else ""
        if not reason:
            raise
        print(f"trainer: error: [rank {process.rank}] lost contact with another rank ({reason}): a process or "
              f"node of the job died, hung or lost the network; once every node is back, run the same command "
              f"with --resume on each to continue from the last checkpoint", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("trainer: interrupted: run the same command with --resume to continue", file=sys.stderr)
        return 130
    finally:
        stop_process()
    return 0


if __name__ == "__main__":
    sys.exit(main())
