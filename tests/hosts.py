"""Separate hosts on one machine, for the multi-host tests: Linux network namespaces on a bridge.

Each simulated host gets its own network stack (a namespace with loopback and one veth port
on a private bridge, address 10.213.N.H/24), its own /tmp (a folder of the test bind-mounted
over /tmp, as a container has) and, unless it is given the checkout, no ncaforge source at
all: the repository folder is covered by an empty tmpfs with only the virtual environment
mounted back, the way a cluster node has the same Python packages installed but not the
user's code. Code such a host runs must reach it through Ray's runtime environment.

Every process runs through `ip netns exec NS unshare --mount`, so its mounts are private to
it and vanish with it. `separate_hosts` always kills every process in its namespaces and
removes the namespaces, the bridge and the folders. Only the hosts' own addresses and
loopback are ever contacted. Creating namespaces needs root: `namespaces_unavailable()`
gives the reason to skip where they cannot be made.
"""

import contextlib
import fcntl
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from tests.conftest import ROOT

VENV = os.path.dirname(os.path.dirname(sys.executable))
"""The virtual environment the tests run in; every host has it, as every node of a cluster has the packages."""
HOSTS_LOCK = "/tmp/ncaforge-separate-hosts.lock"
"""Held while a set of hosts exists. Sets made at once by parallel test processes would share mount points on
the root filesystem, such as /shards, and the first to finish would remove them from under the other."""

SETUP = r"""
set -e
if [ "$HIDE_CHECKOUT" = 1 ]; then
    mount --bind "$VENV" "$HOST_ROOT/venv"
    mount -t tmpfs -o size=1m ncaforge-elsewhere "$CHECKOUT"
    mkdir -p "$VENV"
    mount --bind "$HOST_ROOT/venv" "$VENV"
fi
echo "$HOST_MOUNTS" | while read -r source target; do
    if [ -n "$target" ]; then mount --bind "$source" "$target"; fi
done
for kept in "$CHECKOUT" "$VENV"; do  # a checkout or venv under /tmp stays where it is in the host's own /tmp
    case "$kept" in
        "$CHECKOUT"/*) ;;
        /tmp/*) mkdir -p "$HOST_ROOT/tmp${kept#/tmp}"; mount --rbind "$kept" "$HOST_ROOT/tmp${kept#/tmp}" ;;
    esac
done
mount --rbind "$HOST_ROOT/tmp" /tmp
cd "${HOST_CWD:-/tmp}"
exec "$@"
"""
"""Run as `sh -c SETUP host ARGV...` inside a host's own mount namespace: hide the checkout, mount the
host's own folders (HOST_MOUNTS: 'source target' lines), give it its /tmp (keeping a checkout or venv
that lies under /tmp, as CI's may), then exec ARGV."""


@functools.cache
def namespaces_unavailable() -> str:
    """Why network namespaces cannot be made here ('' when they can); probed once per test session."""
    if os.geteuid() != 0:
        return "simulated hosts need root (ip netns, mount)"
    for tool in ("ip", "unshare", "mount"):
        if not shutil.which(tool):
            return f"simulated hosts need the {tool!r} command"
    name = f"ncaprobe{os.getpid() % 100000}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode:
        return f"ip netns add failed here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    return ""


@dataclass
class Host:
    """One simulated host: a network namespace with one address, a private /tmp, with or without the checkout."""

    name: str
    namespace: str
    address: str
    root: str
    """This host's folder as the test sees it; ROOT/tmp is the host's /tmp."""
    has_checkout: bool
    mounts: dict
    """Absolute path on this host -> its folder under `root`: e.g. a /shards volume of its own."""

    def path(self, inside: str) -> str:
        """The test's path to `inside`, a path under this host's /tmp."""
        assert inside.startswith("/tmp/"), inside
        return os.path.join(self.root, "tmp", inside.removeprefix("/tmp/"))

    def mounted(self, target: str) -> str:
        """The test's path to the folder this host has at `target` (one of its `mounts`)."""
        return os.path.join(self.root, self.mounts[target])

    def command(self, argv: list) -> list:
        return ["ip", "netns", "exec", self.namespace, "unshare", "--mount", "--propagation", "private",
                "sh", "-c", SETUP, self.name, *argv]

    def environment(self, env: dict = None, cwd: str = None) -> dict:
        # a host starts clean of this process's Ray settings (a local runtime sets RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0)
        base = {**{key: value for key, value in os.environ.items() if not key.startswith("RAY_")}, **(env or {})}
        path = os.pathsep.join([os.path.join(VENV, "bin"), base.get("PATH", "/usr/bin:/bin")])
        mounts = "\n".join(f"{os.path.join(self.root, folder)} {target}" for target, folder in self.mounts.items())
        return {**base, "PATH": path, "HOME": "/tmp", "HOST_ROOT": self.root, "VENV": VENV, "CHECKOUT": ROOT,
                "HIDE_CHECKOUT": "0" if self.has_checkout else "1", "TMPDIR": "/tmp", "HOST_MOUNTS": mounts,
                "HOST_CWD": cwd or "/tmp"}

    def popen(self, argv: list, env: dict = None, cwd: str = None, **kwargs) -> subprocess.Popen:
        """Start argv on this host in `cwd` (default its /tmp), in a session of its own."""
        return subprocess.Popen(self.command(argv), env=self.environment(env, cwd), start_new_session=True, **kwargs)

    def run(self, argv: list, env: dict = None, cwd: str = None, timeout: float = 300,
            **kwargs) -> subprocess.CompletedProcess:
        """Run argv on this host in `cwd` (default its /tmp) to the end; its output captured as text."""
        return subprocess.run(self.command(argv), env=self.environment(env, cwd), capture_output=True, text=True,
                              timeout=timeout, start_new_session=True, **kwargs)

    def pids(self) -> list:
        listed = subprocess.run(["ip", "netns", "pids", self.namespace], capture_output=True, text=True)
        return [int(pid) for pid in listed.stdout.split()]

    def kill_everything(self) -> None:
        """SIGKILL every process of this host, as when the machine dies."""
        for _ in range(5):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


@contextlib.contextmanager
def separate_hosts(*names: str, with_checkout: tuple = (), mounts: dict = None):
    """Yield {name: Host}, each in its own namespace on one fresh bridge; `with_checkout` names the hosts that
    have this repository (the others have only its virtual environment); `mounts` gives hosts folders of
    their own at absolute paths ({host name: [path, ...]}; an absent path is made as an empty mount point and
    removed afterwards). Every host resolves the others by name. Everything is removed afterwards.
    One set at a time on the machine (HOSTS_LOCK): a second caller, in another test process, waits."""
    with open(HOSTS_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with hosts_on_a_bridge(names, with_checkout, mounts or {}) as hosts:
            yield hosts


@contextlib.contextmanager
def hosts_on_a_bridge(names: tuple, with_checkout: tuple, mounts: dict):
    """separate_hosts' work, once it holds HOSTS_LOCK."""
    tag = f"{os.getpid() % 10000:04d}{int(time.time() * 1000) % 1000:03d}"
    subnet = f"10.213.{os.getpid() % 250 + 1}"
    bridge = f"ncabr{tag}"[:15]
    root = tempfile.mkdtemp(prefix="ncahosts", dir="/tmp")
    hosts, made_mount_points = {}, []
    try:
        for path in sorted({path for paths in mounts.values() for path in paths}):
            if not os.path.exists(path):
                os.makedirs(path)
                made_mount_points.append(path)
        sh("ip", "link", "add", bridge, "type", "bridge")
        sh("ip", "link", "set", bridge, "up")
        for number, name in enumerate(names, start=1):
            namespace, outside, inside = f"nca{tag}h{number}", f"ncv{tag}h{number}"[:15], f"ncp{tag}h{number}"[:15]
            own = {path: "mount" + path.replace("/", "-") for path in mounts.get(name, [])}
            host = Host(name, namespace, f"{subnet}.{number}", os.path.join(root, name), name in with_checkout, own)
            for folder in ("tmp", "venv", *own.values()):
                os.makedirs(os.path.join(host.root, folder))
            sh("ip", "netns", "add", namespace)
            hosts[name] = host
            sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
            sh("ip", "link", "set", outside, "master", bridge)
            sh("ip", "link", "set", outside, "up")
            sh("ip", "link", "set", inside, "netns", namespace)
            sh("ip", "-n", namespace, "addr", "add", f"{host.address}/24", "dev", inside)
            sh("ip", "-n", namespace, "link", "set", inside, "up")
            sh("ip", "-n", namespace, "link", "set", "lo", "up")
        names_file = "127.0.0.1 localhost\n" + "".join(f"{host.address} {host.name}\n" for host in hosts.values())
        for host in hosts.values():  # ip netns exec mounts /etc/netns/NS/hosts over /etc/hosts
            os.makedirs(f"/etc/netns/{host.namespace}", exist_ok=True)
            with open(f"/etc/netns/{host.namespace}/hosts", "w", encoding="utf-8") as f:
                f.write(names_file)
        yield hosts
    finally:
        for host in hosts.values():
            host.kill_everything()
            subprocess.run(["ip", "netns", "delete", host.namespace], capture_output=True)
            shutil.rmtree(f"/etc/netns/{host.namespace}", ignore_errors=True)
        for number in range(1, len(names) + 1):  # a veth pair still outside its namespace (setup failed midway)
            subprocess.run(["ip", "link", "delete", f"ncv{tag}h{number}"[:15]], capture_output=True)
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True)
        mounted = [folder for folder, _, _ in os.walk(root) if os.path.ismount(folder)]
        assert not mounted, f"{mounted} still mounted here: not removing {root}"  # never delete through a mount
        shutil.rmtree(root, ignore_errors=True)
        for path in made_mount_points:
            with contextlib.suppress(OSError):  # not if something was written there: left for a person to see
                os.rmdir(path)
