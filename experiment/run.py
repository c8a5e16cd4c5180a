"""Running an experiment: data first, then every chain (a pre-pre-training arm and seed: its run and
the language runs that start from it), then the report.

Chains run one after another on this machine, each run using every core, or side by side as
Ray tasks when RAY_ADDRESS names a cluster (each task asks for `threads` CPUs; the cluster's
nodes must see OUT and this checkout at the same paths, a shared disk, and reach the catalog:
on several nodes serve it on an address they reach, `--catalog-host`, with
NCAFORGE_CATALOG_TOKEN set, which the tasks inherit). Either way one progress bar covers the
whole experiment: its unit is compute (tokens weighted by each stage's cost per token, so a
language token of GPT-2's 50k-word head counts for more than an NCA one), its text says
which arm, seed and stage is running, and its ETA is for everything left.

Killed at any point and run again, it finishes what was finished (steps), resumes the run
that was cut (the trainer's bitwise resume) and writes the same report. The time it spent is
summed over every invocation in OUT/reports/<name>/elapsed.json, the report's wall time.
"""

import json
import os
import time

from tqdm import tqdm

from experiment.catalog import serving
from experiment.plan import Planner, pretrain_kind
from experiment.recipe import ExperimentError, Recipe
from experiment.report import ArmRun, write_report
from experiment.steps import DataSteps, run_train, train_finished, trained_tokens
from generator.atomic import write_bytes_atomically
from service.settings import TOKEN_ENV

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ELAPSED_NAME = "elapsed.json"


class Progress:
    """The whole experiment's bar: compute done over compute planned, and what is running."""

    def __init__(self, chains: list, enabled: bool):
        self.train_steps = [step for chain in chains for step in chain.steps]
        total = sum(step.tokens * step.cost_per_token for step in self.train_steps)
        self.bar = tqdm(total=total, unit="", unit_scale=True, disable=not enabled, dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {percentage:3.0f}% [{elapsed}<{remaining}] {postfix}")
        self.finished = {step.run_dir for step in self.train_steps if train_finished(step)}
        self.bar.update(self.done())

    def done(self) -> float:
        """Compute done: finished runs whole, the others read off their metrics logs."""
        done = 0.0
        for step in self.train_steps:
            if step.run_dir not in self.finished and train_finished(step):
                self.finished.add(step.run_dir)
            tokens = step.tokens if step.run_dir in self.finished else min(trained_tokens(step.run_dir), step.tokens)
            done += tokens * step.cost_per_token
        return done

    def poll(self, running: str) -> None:
        self.bar.set_description_str(running, refresh=False)
        self.bar.update(max(self.done() - self.bar.n, 0))

    def close(self) -> None:
        self.bar.close()


class Elapsed:
    """Seconds this experiment has run, summed over invocations, kept in a small JSON file."""

    def __init__(self, path: str):
        self.path, self.start = path, time.monotonic()
        try:
            with open(path, encoding="utf-8") as f:
                self.before = float(json.load(f)["seconds"])
        except (OSError, ValueError, KeyError):
            self.before = 0.0

    @property
    def seconds(self) -> float:
        return self.before + time.monotonic() - self.start

    def save(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        write_bytes_atomically(self.path, json.dumps({"seconds": round(self.seconds, 1)}).encode())


def make_data(planner: Planner, out: str, say) -> tuple:
    """({(arm, seed|'validation'|'train'): folder}, {corpus label: folder}), each made unless kept."""
    data_steps = DataSteps(out)
    data, corpora = {}, {}
    for key, step in planner.pretrain_data_steps().items():
        if not data_steps.finished(step):
            say(f"experiment: making {step.name}")
        data[key] = data_steps.run(step)
    for label, step in planner.corpus_steps().items():
        if not data_steps.finished(step):
            say(f"experiment: preparing corpus {label}")
        corpora[label] = data_steps.run(step)
    return data, corpora


def run_chain_steps(steps: list, on_poll=None) -> None:
    for step in steps:
        run_train(step, (lambda name=step.name: on_poll(name)) if on_poll else None)


def run_chains_here(chains: list, progress: Progress, elapsed: Elapsed) -> None:
    def on_poll(name):
        progress.poll(name)
        elapsed.save()

    for chain in chains:
        run_chain_steps(chain.steps, on_poll)
        progress.poll("")


def run_chains_on_ray(chains: list, threads: int, progress: Progress, elapsed: Elapsed, say) -> None:
    """Every chain as a Ray task asking for `threads` CPUs; the driver only watches the run folders.
    The tasks run this checkout's code (PYTHONPATH) and reach the catalog with the driver's token."""
    from generator.cluster import check_reachable
    from generator.errors import ConfigError

    address = os.environ["RAY_ADDRESS"]
    try:
        check_reachable(address)
    except ConfigError as error:
        raise ExperimentError(str(error)) from None
    import ray

    env_vars = {"PYTHONPATH": os.pathsep.join(filter(None, [PROJECT_DIR, os.environ.get("PYTHONPATH")]))}
    if os.environ.get(TOKEN_ENV):
        env_vars[TOKEN_ENV] = os.environ[TOKEN_ENV]
    ray.init(address=address, log_to_driver=False, logging_level="error", runtime_env={"env_vars": env_vars})
    say(f"experiment: {len(chains)} chain(s) as Ray tasks of {threads} CPU(s) each on {address}")
    try:
        task = ray.remote(num_cpus=threads, max_retries=0)(run_chain_steps)
        pending = {task.remote(chain.steps): chain for chain in chains}
        while pending:
            finished, _ = ray.wait(list(pending), timeout=5.0)
            for reference in finished:
                pending.pop(reference)
                ray.get(reference)
            running = [f"{c.arm} seed {c.seed}" for c in pending.values()]
            progress.poll(", ".join(running[:3]) + (" ..." if len(running) > 3 else ""))
            elapsed.save()
    finally:
        ray.shutdown()


def copy_logs(step, folder: str) -> str:
    """Copy a run's metrics and config into the report's folder (a committable record); return the copy."""
    os.makedirs(folder, exist_ok=True)
    for name in ("metrics.jsonl", "config.json"):
        with open(os.path.join(step.run_dir, name), "rb") as f:
            write_bytes_atomically(os.path.join(folder, name), f.read())
    return folder


def report(recipe: Recipe, chains: list, report_dir: str, command: str, wall_seconds: float) -> str:
    runs = []
    for chain in chains:
        name = f"{chain.arm}-seed{chain.seed}"
        pretrain = copy_logs(chain.pretrain, os.path.join(report_dir, "runs", "pretrain", name)) if chain.pretrain else None
        for arm, corpus, step in chain.language:
            language = copy_logs(step, os.path.join(report_dir, "runs", corpus, f"{arm}-seed{chain.seed}"))
            runs.append(ArmRun(arm, chain.seed, corpus, language, pretrain, pretrain_kind(chain.arm), chain.arm))
    variants = [f"**{name}** starts its language runs from the pre-pre-training runs of {variant.of}, with "
                f"{', '.join(f'{key}={value}' for key, value in recipe.transfer_overrides(name))}."
                for name, variant in recipe.variants.items()]
    return write_report(report_dir, f"Experiment {recipe.name}", runs, [*recipe.notes, *variants], command,
                        wall_seconds)


def run_experiment(recipe: Recipe, out: str, cpus: int, command: str, progress: bool = True, say=print,
                   catalog_host: str = "127.0.0.1") -> str:
    """Run (or finish) the experiment; return the report folder."""
    planner = Planner(recipe, out, cpus)
    labels = "-".join(spec.label for spec in recipe.corpora)
    report_dir = os.path.join(planner.out, "reports", f"{recipe.name}-{labels}")
    os.makedirs(report_dir, exist_ok=True)
    write_bytes_atomically(os.path.join(report_dir, "recipe.json"),
                           (json.dumps(recipe.model_dump(mode="json"), indent=1, sort_keys=True) + "\n").encode())
    elapsed = Elapsed(os.path.join(report_dir, ELAPSED_NAME))
    data, corpora = make_data(planner, planner.out, say)
    with serving(os.path.join(planner.out, "data"), catalog_host) as locate:
        chains = planner.chains(data, corpora, locate)
        left = [chain for chain in chains if not all(train_finished(step) for step in chain.steps)]
        say(f"experiment {recipe.name}: {len(recipe.arms)} arm(s) x {len(recipe.seeds)} seed(s) on {labels}: "
            f"{len(chains) - len(left)} of {len(chains)} chain(s) already finished; data served at "
            f"{locate('')}")
        bar = Progress(chains, progress)
        try:
            if left and os.environ.get("RAY_ADDRESS"):
                run_chains_on_ray(left, planner.threads, bar, elapsed, say)
            elif left:
                run_chains_here(left, bar, elapsed)
        finally:
            bar.close()
            elapsed.save()
    report(recipe, chains, report_dir, command, elapsed.seconds)
    return report_dir
