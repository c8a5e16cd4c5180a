"""Multi-node training on simulated separate hosts: two torchrun launchers, the catalog on a third host.

Each host is a network namespace with its own address and its own /tmp (tests.hosts), so
the launchers meet only through the c10d rendezvous on node0's address, the ranks talk
only through gloo over the hosts' bridge, and each node downloads the shards from the
catalog host (bearer token required off loopback) into its own cache. The two-node job
must compute what one launcher with the same global batch computes; losing a node must
end the survivor with one clear line; a rendezvous that cannot happen must end the
launcher within its configured timeouts instead of leaving it waiting.
"""

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from service.settings import TOKEN_ENV
from tests.hosts import namespaces_unavailable, separate_hosts
from tests.service_datasets import made_datasets
from tests.trainer_runs import (MICRO_MODEL, assert_same_run, catalog_server, finish, metrics, run_trainer,
                                start_trainer)

pytestmark = pytest.mark.skipif(bool(namespaces_unavailable()), reason=namespaces_unavailable() or "-")

TOKEN = "multihost-test-token-0123456789"
ENDPOINT_PORT = 29500
TIMEOUTS = "read_timeout=30,join_timeout=90"
"""torchrun's rendezvous timeouts: reaching the endpoint and store reads, all nodes joining (60 s and 600 s
by default)."""
COLLECTIVE_TIMEOUT = 60
NOTICED_WITHIN = 30
"""A dead peer's closed connection is noticed at once; on a loaded machine "at once" still takes seconds, but
far less than COLLECTIVE_TIMEOUT, so the two stay told apart."""
ARGS = [*MICRO_MODEL, "--train.micro_batch", "2", "--train.eval_every", "3", "--train.eval_rows", "8",
        "--data.holdout_rows", "40", "--data.loader_workers", "0",
        "--train.collective_timeout", str(COLLECTIVE_TIMEOUT)]
LOST = re.compile(r"trainer: error: \[rank 0\] lost contact with another rank \((?P<reason>[^()]+)\): a process or "
                  r"node of the job died, hung or lost the network; once every node is back, run the same command "
                  r"with --resume on each to continue from the last checkpoint")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Hosts catalog, node0 and node1 (addresses in that order), the catalog serving the high dataset."""
    made = made_datasets(tmp_path_factory)
    logs = tmp_path_factory.mktemp("multihost")
    with separate_hosts("catalog", "node0", "node1", with_checkout=("catalog", "node0", "node1")) as hosts:
        shutil.copytree(made.high.folder, hosts["catalog"].path(f"/tmp/shards/{made.high.id}"))
        with catalog_server("/tmp/shards", logs / "catalog.log", host=hosts["catalog"], token=TOKEN) as base_url:
            yield hosts, f"{base_url}/v1/datasets/{made.high.id}", made


def interface(host) -> str:
    """The name of the network interface that holds the host's address."""
    shown = subprocess.run(["ip", "-n", host.namespace, "-o", "-4", "addr", "show", "to", host.address],
                           capture_output=True, text=True, check=True)
    return shown.stdout.split()[1]


def start_node(host, endpoint: str, args: list, log: Path, is_host: bool,
               timeouts: str = TIMEOUTS) -> subprocess.Popen:
    """One launcher of a two-node job, one rank, on `host`. Every simulated host has this machine's hostname
    (resolving to 127.0.0.1), so torchrun is told which node serves the rendezvous store (is_host) and each
    node's address (--local-addr, which also orders the ranks: the lower address is rank 0), and gloo the
    interface to use."""
    rendezvous = ["--nnodes", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "multihost",
                  "--rdzv-conf", f"{timeouts},is_host={int(is_host)}", "--local-addr", host.address]
    return start_trainer(1, args, log, rendezvous=rendezvous, host=host,
                         env={TOKEN_ENV: TOKEN, "GLOO_SOCKET_IFNAME": interface(host)})


def start_job(hosts: dict, args: list, logs: Path) -> tuple:
    """The launchers of node0 (the rendezvous endpoint, rank 0) and node1, logging to LOGS/nodeN.log."""
    endpoint = f"{hosts['node0'].address}:{ENDPOINT_PORT}"
    return (start_node(hosts["node0"], endpoint, args, logs / "node0.log", is_host=True),
            start_node(hosts["node1"], endpoint, args, logs / "node1.log", is_host=False))


def test_two_nodes_compute_what_one_launcher_with_the_same_global_batch_computes(cluster, tmp_path):
    hosts, url, made = cluster
    args = [*ARGS, "--data", url, "--data.cache_dir", "/tmp/cache", "--train.run_dir", "/tmp/run", "--train.steps", "6"]
    jobs = start_job(hosts, args, tmp_path)
    single = tmp_path / "single"  # while the two-node job runs, to save time
    alone = run_trainer(2, [*ARGS, "--data", str(made.high.folder), "--train.run_dir", str(single),
                            "--train.steps", "6"], tmp_path / "single.log")
    assert alone.returncode == 0, alone.stdout[-3000:]
    for name, job in zip(("node0", "node1"), jobs):
        result = finish(job, tmp_path / f"{name}.log", timeout=240)
        assert result.returncode == 0, result.stdout[-3000:]
    run = Path(hosts["node0"].path("/tmp/run"))
    assert [record["world"] for record in metrics(run, "start")] == [2]
    assert_same_run(run, single, 6)  # gloo sums two ranks' gradients alike wherever they run: equal bits
    assert not Path(hosts["node1"].path("/tmp/run")).exists()  # rank 0 alone writes the run folder
    for name in ("node0", "node1"):
        cache = Path(hosts[name].path(f"/tmp/cache/{made.high.id}"))
        assert sorted(path.name for path in cache.glob("part-*")) == ["part-00000.arrow", "part-00001.arrow"]


def test_a_killed_node_ends_the_other_with_one_clear_line_and_resume_needs_a_shared_run_folder(cluster, tmp_path):
    hosts, url, _ = cluster
    args = [*ARGS, "--data", url, "--data.cache_dir", "/tmp/cache", "--train.run_dir", "/tmp/killed",
            "--train.steps", "100000", "--train.eval_every", "100000", "--train.checkpoint_every", "2"]
    node0, node1 = start_job(hosts, args, tmp_path)
    run = Path(hosts["node0"].path("/tmp/killed"))
    deadline = time.monotonic() + 240
    while not (run / "metrics.jsonl").exists() or len(metrics(run, "train")) < 3:
        assert node0.poll() is None and time.monotonic() < deadline, (tmp_path / "node0.log").read_text()[-3000:]
        time.sleep(0.1)
    struck = time.monotonic()
    hosts["node1"].kill_everything()
    survivor = finish(node0, tmp_path / "node0.log", timeout=COLLECTIVE_TIMEOUT + 60)
    took = time.monotonic() - struck
    finish(node1, tmp_path / "node1.log", timeout=10)
    assert survivor.returncode != 0
    assert took < NOTICED_WITHIN, took  # the closed connection is noticed at once, not by the timeout
    lines = [line for line in survivor.stdout.splitlines() if line.startswith("trainer: error:")]
    assert len(lines) == 1 and LOST.fullmatch(lines[0]), survivor.stdout[-3000:]
    reason = LOST.fullmatch(lines[0])["reason"]  # gloo's words: node1's connection closed or reset
    assert f"[{hosts['node1'].address}]:" in reason and "by peer" in reason, reason

    logs = tmp_path / "resumed"
    logs.mkdir()
    resumed = [finish(job, logs / f"{name}.log", timeout=240)
               for name, job in zip(("node0", "node1"), start_job(hosts, [*args, "--resume"], logs))]
    newest = sorted(path.name for path in run.glob("step-*"))[-1]
    for rank, result in enumerate(resumed):
        assert result.returncode != 0
        assert (f"trainer: error: [rank {rank}] the ranks found different checkpoints to resume from in /tmp/killed "
                f"(rank 0 {newest}, rank 1 none): to resume on several nodes, --train.run_dir must be a folder they "
                f"all share, or hold a copy of rank 0's") in result.stdout, result.stdout[-3000:]


def test_a_rendezvous_that_cannot_happen_ends_the_launcher_within_its_timeouts(cluster, tmp_path):
    """An endpoint address no host has, an endpoint port nobody listens on, and an endpoint whose second node
    never comes: torchrun gives up after read_timeout (and one retry) or join_timeout, before any trainer
    starts, its last line naming the failure."""
    hosts, url, _ = cluster
    node0, node1 = hosts["node0"], hosts["node1"]
    unused = f"{node0.address.rsplit('.', 1)[0]}.99"
    cases = {"nobody": (node1, f"{unused}:{ENDPOINT_PORT}", False, "RendezvousConnectionError"),
             "closed": (node1, f"{node0.address}:{ENDPOINT_PORT + 1}", False, "RendezvousConnectionError"),
             "alone": (node0, f"{node0.address}:{ENDPOINT_PORT + 2}", True, "RendezvousTimeoutError")}
    started = time.monotonic()
    jobs = {name: start_node(host, endpoint, ["--data", url, *ARGS], tmp_path / name, is_host,
                             timeouts="read_timeout=5,join_timeout=5")
            for name, (host, endpoint, is_host, _) in cases.items()}
    for name, job in jobs.items():
        result = finish(job, tmp_path / name, timeout=120)
        assert time.monotonic() - started < 55  # the 5 s timeouts plus start-up, not torchrun's 60 s and 600 s
        assert result.returncode == 1
        last = result.stdout.strip().splitlines()[-1]
        assert last.startswith(f"torch.distributed.elastic.rendezvous.api.{cases[name][3]}"), result.stdout[-3000:]
        assert "trainer:" not in result.stdout
