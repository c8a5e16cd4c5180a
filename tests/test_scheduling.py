"""A shard that fails for good stops the run with one line naming the log, and the log keeps the
whole remote traceback. Ray is replaced by a stand-in whose every task fails, so no runtime starts."""

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
        if isinstance(ref, list):  # the actors' node ids
            return ["node-1" for _ in ref]
        raise RuntimeError(REMOTE_TRACEBACK)


class Actor:
    class make_shard:
        @staticmethod
        def remote(first_rule, stop_rule, max_rows):
            return ("task", first_rule)

    class node_id:
        @staticmethod
        def remote():
            return ("node_id",)


def test_a_failed_shard_is_one_line_naming_the_log_which_holds_the_full_traceback(tmp_path):
    config = DatasetConfig(sequences=10, candidates_per_shard=1024, generator=GeneratorConfig(band="high"))
    log_path = run_log_path(str(tmp_path), "high-10-000000000000")
    with tqdm(disable=True) as bar:
        writer = ShardWriter(config, str(tmp_path / "high-10-000000000000"), ExistingShards(complete=False), bar)
        with pytest.raises(PipelineError) as error:
            make_shards(FailingRay(), [Actor()], config, writer, driver={}, log_path=log_path)
    message = str(error.value)
    assert "\n" not in message and re.fullmatch(
        r"making part-0000\d\.arrow failed \(RuntimeError: ray::ShardWorker.make_shard\(\) \(pid=4242, ip=10.0.0.2\)\); "
        rf"full traceback in {re.escape(log_path)}; re-run the same command to resume", message)
    assert log_path == str(tmp_path / ".ncaforge-logs" / "high-10-000000000000.log")
    with open(log_path, encoding="utf-8") as log:
        text = log.read()
    assert "failed" in text and "MemoryError: the deep cause" in text and "Traceback (most recent call last)" in text
