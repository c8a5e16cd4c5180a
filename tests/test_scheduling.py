"""The scheduling loop's failures, with Ray replaced by stand-ins so that no runtime starts: a shard whose
code fails stops the run with one line naming the log, which keeps the whole remote traceback; a worker
lost for good (its actor gone, or its node silent and dead) is dropped and its shards remade by the
others, with the same bytes; a shard that loses two workers, or the loss of every worker, stops the run
in one line. The multi-host tests lose a real worker node."""

import os
import re

import pytest
from tqdm import tqdm

from generator.config import DatasetConfig, GeneratorConfig
from generator.errors import PipelineError
from generator.journal import ExistingShards
from generator.scheduling import make_shards, run_log_path
from generator.shard_writer import ShardWriter

REMOTE_TRACEBACK = ("ray::ShardWorker.make_shard() (pid=4242, ip=10.0.0.2)\n"
                    "Traceback (most recent call last):\n"
                    "  File \"generator/generate.py\", line 99, in generate\n"
                    "MemoryError: the deep cause")


class FailingRay:
    """ray.wait hands back the first pending task; ray.get of a task raises what a failed remote task raises
    (a RayTaskError: the task's code failed, not its actor)."""

    class exceptions:
        class RayActorError(Exception):
            """Never raised here: the actor lives, its task fails."""

    def wait(self, refs, num_returns, timeout=None):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        raise RuntimeError(REMOTE_TRACEBACK)


class Actor:
    class make_shard:
        @staticmethod
        def remote(first_rule, stop_rule, max_rows):
            return ("task", first_rule)


def test_a_failed_shard_is_one_line_naming_the_log_which_holds_the_full_traceback(tmp_path):
    config = DatasetConfig(sequences=10, candidates_per_shard=1024, generator=GeneratorConfig(band="high"))
    log_path = run_log_path(str(tmp_path), "high-10-000000000000")
    with tqdm(disable=True) as bar:
        writer = ShardWriter(config, str(tmp_path / "high-10-000000000000"), ExistingShards(complete=False), bar)
        with pytest.raises(PipelineError) as error:
            make_shards(FailingRay(), [Actor()], {}, config, writer, driver={}, log_path=log_path)
    message = str(error.value)
    assert "\n" not in message and re.fullmatch(
        r"making part-0000\d\.arrow failed \(RuntimeError: ray::ShardWorker.make_shard\(\) \(pid=4242, ip=10.0.0.2\)\); "
        rf"full traceback in {re.escape(log_path)}; re-run the same command to resume", message)
    assert log_path == str(tmp_path / ".ncaforge-logs" / "high-10-000000000000.log")
    with open(log_path, encoding="utf-8") as log:
        text = log.read()
    assert "failed" in text and "MemoryError: the deep cause" in text and "Traceback (most recent call last)" in text


class ActorLost(Exception):
    """What the stand-in raises for a task whose actor is gone (Ray's RayActorError)."""


class Task:
    """A finished task: ray.get gives its result or raises its error."""

    def __init__(self, result=None, error=None):
        self.result, self.error = result, error


class ClusterRay:
    """A stand-in for Ray over in-process actors: tasks run when submitted, ray.wait hands back the first
    pending one (none once every pending task's node is dead, as a silent node's tasks never return)."""

    class exceptions:
        RayActorError = ActorLost

    def __init__(self, node_count: int):
        self.alive = {f"node-{n}": True for n in range(node_count)}
        self.killed = []

    def wait(self, refs, num_returns, timeout=None):
        answered = [ref for ref in refs if self.alive[ref.node]]
        return answered[:num_returns], []

    def get(self, ref):
        if ref.error:
            raise ref.error
        return ref.result

    def nodes(self):
        return [{"NodeID": node, "Alive": alive, "NodeManagerAddress": f"10.0.0.{n}"}
                for n, (node, alive) in enumerate(self.alive.items())]

    def kill(self, actor, no_restart):
        self.killed.append(actor)


class GeneratingActor:
    """Makes real shards in-process; `loses` holds first rule ids whose task loses this actor."""

    def __init__(self, ray: ClusterRay, node: str, rule_generator, record, loses=()):
        self.ray, self.node, self.rule_generator, self.record, self.loses = ray, node, rule_generator, record, set(loses)
        self.made = []
        self.make_shard = self  # actor.make_shard.remote(...)

    def remote(self, first_rule, stop_rule, max_rows):
        from generator.shard_writer import MadeShard

        if first_rule in self.loses:
            task = Task(error=ActorLost(f"the actor on {self.node} died"))
        else:
            rows = self.rule_generator.generate(first_rule, stop_rule, max_rows)
            self.made.append(first_rule)
            task = Task(MadeShard(candidate_ratios=rows.candidate_ratios, rule_ids=rows.rule_ids,
                                  trajectory_ids=rows.trajectory_ids, ratios=rows.ratios, tokens=rows.tokens,
                                  worker=self.record))
        task.node = self.node
        return task


EVERY_SHARD = {shard * 128 for shard in range(10)}
"""First rule ids of every shard the small dataset could ask for."""


@pytest.fixture(scope="module")
def small():
    """A 3-shard dataset config, its rule generator, a worker record matching the driver, and the shard
    files of an undisturbed run with one actor."""
    import tempfile

    from generator.format import WorkerRecord
    from generator.generate import RuleGenerator
    from generator.provenance import driver_versions

    config = DatasetConfig(sequences=120, candidates_per_shard=128,
                           generator=GeneratorConfig(band="high", compile=False, rules_per_batch=128, seed=3))
    driver = driver_versions("cpu")
    record = WorkerRecord(node="10.0.0.0", name="test", compiled_step=False, **driver)
    rule_generator = RuleGenerator(config.generator)
    with tempfile.TemporaryDirectory() as folder:
        ray = ClusterRay(1)
        files = shard_files(make(ray, [GeneratingActor(ray, "node-0", rule_generator, record)], config, driver, folder))
        yield config, rule_generator, record, driver, files
    rule_generator.close()


def make(ray, actors, config, driver, folder) -> str:
    dataset_dir = os.path.join(folder, "high-120-000000000000")
    with tqdm(disable=True) as bar:
        writer = ShardWriter(config, dataset_dir, ExistingShards(complete=False), bar)
        make_shards(ray, actors, {actor: actor.node for actor in actors}, config, writer, driver,
                    run_log_path(folder, "high-120-000000000000"))
    return dataset_dir


def shard_files(dataset_dir: str) -> dict:
    from generator.shards import file_sha256

    return {name: file_sha256(os.path.join(dataset_dir, name)) for name in sorted(os.listdir(dataset_dir))
            if name.endswith(".arrow")}


def test_a_lost_worker_is_dropped_and_its_shards_are_remade_by_the_others(small, tmp_path, capsys):
    config, rule_generator, record, driver, undisturbed = small
    ray = ClusterRay(2)
    lost = GeneratingActor(ray, "node-1", rule_generator, record, loses={0})
    survivor = GeneratingActor(ray, "node-0", rule_generator, record)
    actors = [survivor, lost]
    assert shard_files(make(ray, actors, config, driver, str(tmp_path))) == undisturbed
    assert ray.killed == [lost] and actors == [survivor] and 0 in survivor.made
    assert "lost 1 worker(s) on node 10.0.0.1 (ActorLost, logged in" in capsys.readouterr().err


def test_the_workers_of_a_silent_dead_node_are_dropped_and_the_run_finishes_on_the_others(small, tmp_path, capsys):
    config, rule_generator, record, driver, undisturbed = small
    ray = ClusterRay(2)
    ray.alive["node-1"] = False  # its tasks never answer
    actors = [GeneratingActor(ray, "node-0", rule_generator, record), GeneratingActor(ray, "node-1", rule_generator, record)]
    assert shard_files(make(ray, actors, config, driver, str(tmp_path))) == undisturbed
    assert [actor.node for actor in actors] == ["node-0"]
    assert "lost 1 worker(s) on node 10.0.0.1 (their node died):" in capsys.readouterr().err


@pytest.mark.parametrize("losses, words", [
    ({"node-0": {0}, "node-1": {0}, "node-2": {0}}, "making part-00000.arrow lost two workers (ActorLost); full tracebacks in"),
    ({"node-0": EVERY_SHARD, "node-1": EVERY_SHARD}, "every worker is lost (the last on node 10.0.0.0: ActorLost, logged in"),
])
def test_a_shard_that_loses_two_workers_or_the_loss_of_every_worker_stops_in_one_line(small, tmp_path, losses, words):
    config, rule_generator, record, driver, _ = small
    ray = ClusterRay(len(losses))
    actors = [GeneratingActor(ray, node, rule_generator, record, loses) for node, loses in losses.items()]
    with pytest.raises(PipelineError) as error:
        make(ray, actors, config, driver, str(tmp_path))
    assert words in str(error.value) and "\n" not in str(error.value), error.value
