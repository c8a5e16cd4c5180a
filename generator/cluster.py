"""The Ray side of the pipeline: a loopback-only local runtime or a joined cluster, and its actors.

Local runs set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before Ray is imported: Ray then
runs single-node and binds every port to 127.0.0.1 (unset, the GCS, raylet and
workers listen on all interfaces). Token authentication stays on, Ray's default
for local runtimes. With a RAY_ADDRESS the same code joins that cluster instead,
shipping the generator package to its workers through the runtime environment
(local workers import it from the checkout through PYTHONPATH, which keeps
torch.compile's disk cache valid from run to run).

Layout: one actor per GPU when the cluster has GPUs, else one single-threaded
actor per CPU. A local runtime reserves (cores - 1) / cores of a logical CPU per
actor, so one logical CPU always stays free for the driver, which writes the
shards and is not a Ray task: nothing Ray schedules can starve it, and every
physical core still runs an actor. Measured on 2 cores with other work running:
two single-threaded actors made 1.7-1.9M tokens/s, one actor with two threads
0.2-0.4M (its OpenMP barriers wait on whichever thread lost its core). Actors
restart after a crash, on their own node (each is pinned to one), and Ray retries
their shard, a pure function of its rule ids.
Before any shard is made, every actor reports its node and versions and the driver
refuses to mix versions (generator/provenance.py).
"""

import contextlib
import os
import socket
import time
from dataclasses import dataclass

import numpy as np

from generator.config import GeneratorConfig, RunOptions
from generator.errors import ConfigError, PipelineError
from generator.format import WorkerRecord
from generator.provenance import check_same_versions
from generator.shard_writer import MadeShard

LOOPBACK = "127.0.0.1"
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
ACTOR_RESTARTS = 4


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail fast, in one line, when nothing listens at a 'host:port' or 'ray://host:port' address."""
    host_port = address.removeprefix("ray://")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"RAY_ADDRESS={address!r} is not host:port: use e.g. 127.0.0.1:6379, or leave it empty to run locally")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise ConfigError(f"RAY_ADDRESS={address} is unreachable ({error.strerror or error}): start the cluster "
                          f"(ray start --head) or leave RAY_ADDRESS empty to run locally") from None


@contextlib.contextmanager
def ray_runtime(options: RunOptions):
    """Join options.ray_address, or start a local runtime on 127.0.0.1; shut down on exit."""
    if not options.ray_address:
        os.environ.pop("RAY_ADDRESS", None)  # else ray.init() would join it anyway
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read when ray is first imported...
    import ray

    if not options.ray_address:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False  # ...so also set where it was read, if ray came in earlier

    common = {"logging_level": "error", "log_to_driver": False}
    if options.ray_address:  # the cluster's nodes may not have this checkout: ship the package
        ray.init(address=options.ray_address, runtime_env={"py_modules": [PACKAGE_DIR]}, **common)
    else:  # local workers import it from this checkout, wherever the driver was started
        path = os.pathsep.join(filter(None, [os.path.dirname(PACKAGE_DIR), os.environ.get("PYTHONPATH")]))
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, _node_ip_address=LOOPBACK,
                 runtime_env={"env_vars": {"PYTHONPATH": path}}, **common)
    try:
        yield ray
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class WorkerPlan:
    """How many generation actors, with which resources."""

    count: int
    """Number of actors."""
    num_cpus: float
    """Logical CPUs each actor reserves."""
    num_gpus: float
    """GPUs each actor reserves (1 on GPU clusters, else 0)."""
    threads: int
    """torch intra-op threads per actor."""
    device: str
    """'cuda' or 'cpu': the kind of device every actor rolls out on."""


def plan_workers(resources: dict, options: RunOptions) -> WorkerPlan:
    """Pick the actor layout for a cluster with these total resources (see the module docstring);
    no options.ray_address means the local runtime, where one logical CPU stays unreserved."""
    cpus, gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
    if options.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device {options.device!r}: the pipeline takes auto, cpu or cuda (Ray assigns the GPUs)")
    if options.device == "cuda" and not gpus:
        raise ConfigError("device 'cuda' requested but the Ray cluster has no GPUs: use --device auto or cpu")
    if gpus and options.device != "cpu":
        count = options.workers or gpus
        if count > gpus:
            raise ConfigError(f"workers={count} but the cluster has {gpus} GPU(s): use --workers {gpus} or fewer")
        return WorkerPlan(count, 1, 1, options.threads_per_worker or 1, "cuda")
    count = options.workers or cpus
    if count > cpus:
        raise ConfigError(f"workers={count} but the cluster has {cpus} CPU(s): use --workers {cpus} or fewer")
    share = 1.0 if options.ray_address or cpus == 1 else min(1.0, (cpus - 1) / count)
    return WorkerPlan(count, share, 0, options.threads_per_worker or 1, "cpu")


class ShardWorker:
    """A Ray actor that holds one RuleGenerator and makes shards from rule-id ranges."""

    def __init__(self, config: GeneratorConfig, threads: int):
        import torch

        from generator.generate import RuleGenerator

        torch.set_num_threads(threads)
        self.rule_generator = RuleGenerator(config)

    def describe(self) -> WorkerRecord:
        """This worker's node, device and versions: the driver checks them against its own."""
        from generator.provenance import describe_worker

        return describe_worker(self.rule_generator.device, self.rule_generator.config.compile)

    def warm_up(self) -> float:
        """Compile (or load from the disk cache) both step shapes; return the seconds it took."""
        started = time.perf_counter()
        size = self.rule_generator.config.rules_per_batch
        self.rule_generator.score(np.arange(size))
        self.rule_generator.sequences(np.arange(size))
        return time.perf_counter() - started

    def peak_rss(self) -> int:
        """Peak resident memory of this actor's process, in bytes."""
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def make_shard(self, first_rule: int, stop_rule: int, max_rows: int) -> MadeShard:
        """Score candidates first_rule .. stop_rule - 1 and roll out those in the band, stopping
        once `max_rows` rows are made (an upper bound on what the dataset can still use)."""
        rows = self.rule_generator.generate(first_rule, stop_rule, max_rows)
        return MadeShard(candidate_ratios=rows.candidate_ratios, rule_ids=rows.rule_ids, trajectory_ids=rows.trajectory_ids,
                         ratios=rows.ratios, tokens=rows.tokens, worker=self.describe())

    def close(self) -> None:
        """Stop the generator's gzip threads before the actor goes."""
        self.rule_generator.close()


def actor_nodes(ray, plan: WorkerPlan) -> list:
    """The node id each of plan.count actors is pinned to: round-robin over the live nodes, as many on
    each as its CPUs (GPUs, on a GPU plan) hold. A pinned actor restarts only on its own node, so when
    a node dies its actors die with it and the driver gives their shards to the others (scheduling.py),
    rather than Ray moving them to another node or leaving them pending where no node has room."""
    resource, need = ("GPU", plan.num_gpus) if plan.num_gpus else ("CPU", plan.num_cpus)
    room = {node["NodeID"]: int(node["Resources"].get(resource, 0) / need + 1e-9) for node in ray.nodes() if node["Alive"]}
    order = [node for turn in range(max(room.values(), default=0)) for node in sorted(room) if room[node] > turn]
    if len(order) < plan.count:
        raise ConfigError(f"the cluster's live nodes hold {len(order)} of the {plan.count} workers planned: "
                          f"re-run once its nodes are up, or pass --workers {len(order)}")
    return order[:plan.count]


def start_workers(ray, plan: WorkerPlan, config: GeneratorConfig, driver: dict, warm_up: bool = True) -> tuple:
    """Create plan.count actors, each pinned to a node (actor_nodes), and check each runs the `driver`
    versions (provenance.driver_versions) before any shard is made; if they will make shards with a compiled
    step, wait until each has compiled it. An eager step has nothing to warm (it would cost a batch of rules per
    actor, 7 s of CPU here, for no row), so an eager actor that fails on its first batch is retried like any
    shard's. Returns (actors, their WorkerRecords, {actor: node id})."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    actor = ray.remote(num_cpus=plan.num_cpus, num_gpus=plan.num_gpus, max_restarts=ACTOR_RESTARTS,
                       max_task_retries=ACTOR_RESTARTS)(ShardWorker)
    device_config = GeneratorConfig.from_dict({**config.to_dict(), "device": plan.device})
    nodes = {actor.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
             .remote(device_config, plan.threads): node for node in actor_nodes(ray, plan)}
    workers = list(nodes)
    try:
        records = ray.get([worker.describe.remote() for worker in workers])
        for record in records:
            check_same_versions(record, driver, f"worker on node {record.node} runs")
        if warm_up and config.compile:
            ray.get([worker.warm_up.remote() for worker in workers])
    except ray.exceptions.RayActorError as error:
        raise PipelineError(f"a worker was lost while starting ({type(error).__name__}): check the cluster's "
                            f"nodes, then re-run the same command") from None
    return workers, records, nodes


def ask_each(ray, workers: list, method: str) -> list:
    """What `method` returns on each actor that still answers (a worker lost at the end is skipped)."""
    answers = []
    for worker in workers:
        with contextlib.suppress(ray.exceptions.RayActorError):
            answers.append(ray.get(getattr(worker, method).remote()))
    return answers
