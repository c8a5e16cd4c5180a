"""A real Ray head for tests, started with `ray start` on loopback with token authentication. Its ports are
chosen here or by the kernel instead of Ray's fixed defaults (client server 10001, dashboard 8265, agent 52365,
workers 10002-19999), so heads in parallel test workers do not meet. (A local runtime that the pipeline starts
itself still asks for the agent's 52365; a second one at the same time waits about 3 s and runs its agent
without HTTP, which nothing here uses.)"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from tests.conftest import free_port


@contextlib.contextmanager
def ray_head(num_cpus: int = 2):
    """Yield (RAY_ADDRESS, environment for its clients, the head process); stop it and remove its files."""
    ray_dir = tempfile.mkdtemp(prefix="ncaray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    token = os.path.join(ray_dir, "token")
    with open(token, "w") as f:
        f.write(os.urandom(32).hex())
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": token}
    port = free_port()
    ports = [f"--port={port}", f"--ray-client-server-port={free_port()}", f"--dashboard-port={free_port()}",
             f"--dashboard-agent-listen-port={free_port()}", "--min-worker-port=0", "--max-worker-port=0"]
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", "--node-ip-address=127.0.0.1", *ports,
                             f"--temp-dir={ray_dir}", f"--num-cpus={num_cpus}", "--include-dashboard=false",
                             "--disable-usage-stats"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 60
        while not (listening := gcs_answers(port)) and head.poll() is None and time.time() < deadline:
            time.sleep(0.3)
        assert listening and head.poll() is None, f"the Ray head did not start (exit code {head.poll()})"
        yield f"127.0.0.1:{port}", env, head
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
        shutil.rmtree(ray_dir, ignore_errors=True)


def gcs_answers(port: int) -> bool:
    """Whether 127.0.0.1:port (the head's GCS) accepts a connection."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
