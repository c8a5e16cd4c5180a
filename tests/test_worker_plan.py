"""The actor layout for a cluster's resources: one single-threaded actor per CPU or one per GPU,
and on the local runtime one logical CPU left unreserved for the driver."""

import re

import pytest

from generator.cluster import plan_workers
from generator.config import RunOptions
from generator.errors import ConfigError


def test_local_cpus_get_one_single_threaded_actor_each_and_leave_one_logical_cpu_free():
    plan = plan_workers({"CPU": 2.0}, RunOptions())
    assert (plan.count, plan.threads, plan.device) == (2, 1, "cpu")
    assert plan.count * plan.num_cpus == 1.0  # of 2 logical CPUs, one stays free
    eight = plan_workers({"CPU": 8.0}, RunOptions(workers=4))
    assert eight.count == 4 and eight.num_cpus == 1.0 and 8 - eight.count * eight.num_cpus >= 1


def test_a_joined_cpu_cluster_reserves_whole_cpus_and_a_gpu_cluster_one_actor_per_gpu():
    assert plan_workers({"CPU": 48.0}, RunOptions(ray_address="head:6379")).num_cpus == 1.0
    gpu = plan_workers({"CPU": 32.0, "GPU": 4.0}, RunOptions(ray_address="head:6379"))
    assert (gpu.count, gpu.num_gpus, gpu.device) == (4, 1, "cuda")
    assert plan_workers({"CPU": 32.0, "GPU": 4.0}, RunOptions(device="cpu")).device == "cpu"


@pytest.mark.parametrize(
    "resources, options, words",
    [({"CPU": 2.0}, RunOptions(workers=3), "workers=3 but the cluster has 2 CPU(s)"),
     ({"CPU": 8.0, "GPU": 2.0}, RunOptions(workers=3), "workers=3 but the cluster has 2 GPU(s)"),
     ({"CPU": 2.0}, RunOptions(device="cuda"), "the Ray cluster has no GPUs"),
     ({"CPU": 2.0}, RunOptions(device="tpu"), "the pipeline takes auto, cpu or cuda")],
)
def test_impossible_layouts_are_refused_in_one_line(resources, options, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        plan_workers(resources, options)
