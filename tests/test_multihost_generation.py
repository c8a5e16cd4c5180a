"""`make shards` on a Ray cluster of separate hosts: a head, a worker node, and a host that submits the job.

Each host is a network namespace with its own address, its own /tmp and (except the submitting
host) no ncaforge checkout: the code reaches the head and the worker only through the job's
runtime environment, as on a real cluster. Ray's token authentication is on everywhere. The job
is docker-compose.yml's `shards` command line as written (rendered by docker-compose itself),
run from the submitting host against a head named ray-head. The tests check what breaks real
clusters: which node made what, whose files are needed where, a worker node that dies mid-run,
and a worker node with other versions.
"""

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import time

import pytest

from generator.config import DatasetConfig, GeneratorConfig, RunOptions
from generator.pipeline import run
from generator.provenance import installed_torch_version
from tests.hosts import namespaces_unavailable, separate_hosts
from tests.pipeline_runs import dataset_files
from tests.test_compose import rendered_compose

pytestmark = pytest.mark.skipif(bool(namespaces_unavailable()), reason=namespaces_unavailable() or "")

SEED, SEQUENCES, CANDIDATES_PER_SHARD = 7, 300, 128  # ~55 rows a shard: 6 shards, so a kill strikes mid-run
OPTIONS = f"--candidates-per-shard {CANDIDATES_PER_SHARD} --batch 128 --no-compile"
RAY_ENV = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": "/tmp/ray-auth-token"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> str:
    """The same dataset made on one machine, by one local worker."""
    generator = GeneratorConfig(seed=SEED, band="high", compile=False, rules_per_batch=128)
    config = DatasetConfig(sequences=SEQUENCES, candidates_per_shard=CANDIDATES_PER_SHARD, generator=generator)
    return run(config, RunOptions(out=str(tmp_path_factory.mktemp("single")), workers=1, progress=False)).dataset_dir


@pytest.fixture(scope="module")
def cluster(reference):
    """A Ray head (host ray-head, 1 CPU, job server on) and a host to submit from; workers join per test.
    The head is told this checkout's commit, as docker-compose's image is at build time: the job's code
    arrives without its .git folder."""
    lineage = manifest(reference)["generator"]
    head_env = {**RAY_ENV, "NCAFORGE_GIT_COMMIT": lineage["git_commit"], "NCAFORGE_GIT_DIRTY": str(lineage["git_dirty"]).lower()}
    with separate_hosts("ray-head", "worker", "submit", with_checkout=("submit",),
                        mounts={"ray-head": ["/shards"]}) as hosts:
        token = os.urandom(32).hex()
        for host in hosts.values():  # every host holds its own copy of the token, as machines do
            with open(host.path(RAY_ENV["RAY_AUTH_TOKEN_PATH"]), "w", encoding="utf-8") as f:
                f.write(token)
        head = hosts["ray-head"]
        head.popen(["ray", "start", "--head", "--block", f"--node-ip-address={head.address}", "--port=6379",
                    "--num-cpus=1", f"--dashboard-host={head.address}", "--dashboard-port=8265",
                    "--disable-usage-stats"], env=head_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_nodes(hosts, 1)
        yield hosts


def wait_for_nodes(hosts: dict, count: int, timeout: float = 120) -> None:
    """Wait until the head's job server answers and counts `count` live nodes, asked from the submitting host."""
    script = ("import sys, time\nfrom ray.util.state import list_nodes\ndeadline = time.time() + float(sys.argv[2])\n"
              "while time.time() < deadline:\n    try:\n"
              "        alive = list_nodes(address=sys.argv[1], filters=[('state', '=', 'ALIVE')], raise_on_missing_output=False)\n"
              "        if len(alive) == int(sys.argv[3]): sys.exit(0)\n"
              "    except Exception as error: print(error)\n    time.sleep(1)\nsys.exit(1)\n")
    result = hosts["submit"].run(["python", "-c", script, "http://ray-head:8265", str(timeout), str(count)],
                                 env=RAY_ENV, timeout=timeout + 30)
    assert result.returncode == 0, f"the cluster did not reach {count} live node(s): {result.stdout[-2000:]}"


@contextlib.contextmanager
def worker_node(hosts: dict, env: dict = None):
    """A worker node (1 CPU) joined to the head; killed afterwards, and waited for until the head counts it dead."""
    worker = hosts["worker"]
    worker.popen(["ray", "start", "--block", "--address=ray-head:6379", f"--node-ip-address={worker.address}",
                  "--num-cpus=1", "--disable-usage-stats"], env={**RAY_ENV, **(env or {})},
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_nodes(hosts, 2)
        yield worker
    finally:
        worker.kill_everything()
        wait_for_nodes(hosts, 1)


def compose_shards_command() -> list:
    """docker-compose.yml's shards command, rendered by docker-compose with this test's dataset."""
    services = rendered_compose({"BAND": "high", "SEQUENCES": str(SEQUENCES), "SEED": str(SEED),
                                 "PIPELINE_OPTIONS": OPTIONS})["services"]
    command = services["shards"]["command"]
    return shlex.split(command) if isinstance(command, str) else command


def submit(hosts: dict) -> subprocess.Popen:
    """Run the compose shards command on the submitting host, from its checkout (the image's working folder)."""
    return hosts["submit"].popen(compose_shards_command(), env=RAY_ENV, cwd=os.path.dirname(os.path.dirname(__file__)),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def manifest(dataset_dir: str) -> dict:
    with open(os.path.join(dataset_dir, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


def assert_same_dataset(dataset_dir: str, reference: str) -> None:
    """Every shard and picture byte-identical to the single-machine run, and the manifest too except for
    where it was made (the nodes that made it)."""
    made, single = dataset_files(dataset_dir), dataset_files(reference)
    assert {n: h for n, h in made.items() if n != "manifest.json"} == {n: h for n, h in single.items() if n != "manifest.json"}
    ours, theirs = manifest(dataset_dir), manifest(reference)
    for record in (ours, theirs):
        record["environment"].pop("workers")
    assert ours == theirs


def test_a_job_from_a_third_host_makes_the_single_machine_dataset_on_both_nodes(cluster, reference):
    head, worker, submitter = cluster["ray-head"], cluster["worker"], cluster["submit"]
    empty(head.mounted("/shards"))
    assert worker.run(["python", "-c", "import generator"]).returncode != 0  # no checkout on the nodes
    with worker_node(cluster):
        job = submit(cluster)
        output, _ = job.communicate(timeout=600)
    assert job.returncode == 0, output[-3000:]
    dataset_dir = os.path.join(head.mounted("/shards"), os.path.basename(reference))
    assert_same_dataset(dataset_dir, reference)
    assert {record["node"] for record in manifest(dataset_dir)["environment"]["workers"]} == {head.address, worker.address}
    for other in (worker, submitter):  # the driver ran on the head: nothing was written elsewhere
        assert not any(name.endswith(".arrow") for _, _, names in os.walk(other.root) for name in names)
    assert f"dataset   /shards/{os.path.basename(reference)}" in output


def test_a_worker_node_killed_mid_run_leaves_the_job_to_finish_on_the_head(cluster, reference):
    head = cluster["ray-head"]
    empty(head.mounted("/shards"))
    journal = os.path.join(head.mounted("/shards"), os.path.basename(reference), ".progress")
    with worker_node(cluster) as worker:
        job = submit(cluster)
        deadline = time.time() + 300
        while not (os.path.isdir(journal) and any(name.endswith(".json") for name in os.listdir(journal))):
            assert job.poll() is None and time.time() < deadline, job.communicate()[0][-3000:]
            time.sleep(0.05)
        written = len(os.listdir(journal))
        worker.kill_everything()
        output, _ = job.communicate(timeout=600)
    assert job.returncode == 0, output[-3000:]
    handed_over = re.search(rf"lost 1 worker\(s\) on node {worker.address} \(.*?\): (\d+) shard\(s\) to remake", output)
    assert handed_over and int(handed_over.group(1)) >= 1, output[-3000:]
    assert written < manifest(reference)["totals"]["shards"]  # the kill came before the last shard
    dataset_dir = os.path.dirname(journal)
    assert_same_dataset(dataset_dir, reference)


def test_a_worker_node_with_other_versions_is_refused_in_one_line_before_any_shard(cluster):
    shards = cluster["ray-head"].mounted("/shards")
    empty(shards)
    with worker_node(cluster, env={"NCAFORGE_TEST_FAKE_VERSIONS": "torch=0.0.0"}) as worker:
        job = submit(cluster)
        output, _ = job.communicate(timeout=600)
    assert job.returncode != 0
    assert (f"python -m generator.pipeline: error: worker on node {worker.address} runs torch 0.0.0 but the driver "
            f"runs {installed_torch_version()}: install the same versions everywhere") in output
    assert "Traceback" not in output
    assert not any(name.endswith(".arrow") for _, _, names in os.walk(shards) for name in names)


def empty(folder: str) -> None:
    """Remove what `folder` holds: the tests of this module share the head's /shards."""
    for name in os.listdir(folder):
        shutil.rmtree(os.path.join(folder, name))
