"""docker-compose.yml stays valid and safe without a Docker engine: Debian's docker-compose validates
and renders it, and its commands parse with the real command lines. Ray and the catalog require
tokens, which come from secret files, never from the file itself; published ports stay on the host's
loopback; GPUs are reserved with the device syntax. tests/test_multihost_generation.py runs the
rendered shards command against a Ray cluster of separate hosts."""

import os
import shlex
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

COMPOSE = shutil.which("docker-compose")
needs_compose = pytest.mark.skipif(not COMPOSE, reason="docker-compose is not installed (make test installs "
                                                        "Debian's as root: apt-get install docker-compose)")


def rendered_compose(variables: dict = None, files: tuple = ("docker-compose.yml",)) -> dict:
    """`docker-compose config` of the files: variables substituted as compose does, with only `variables` set."""
    if not COMPOSE:
        pytest.skip("docker-compose is not installed")
    options = [argument for name in files for argument in ("-f", os.path.join(ROOT, name))]
    result = subprocess.run([COMPOSE, *options, "config"], cwd=ROOT, env={"PATH": os.environ["PATH"], **(variables or {})},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def command(service: dict) -> list:
    return shlex.split(service["command"]) if isinstance(service["command"], str) else service["command"]


@needs_compose
@pytest.mark.parametrize("files", [["docker-compose.yml"], ["docker-compose.yml", "docker-compose.gpu.yml"]])
def test_the_files_validate_without_any_variable_or_secret_set(files):
    options = [argument for name in files for argument in ("-f", name)]
    result = subprocess.run([COMPOSE, *options, "config", "-q"], cwd=ROOT, env={"PATH": os.environ["PATH"]},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@needs_compose
def test_every_ray_process_requires_the_token_from_a_secret_file_kept_out_of_git_and_the_image():
    config = rendered_compose()
    for name in ("ray-head", "ray-worker", "shards"):
        service = config["services"][name]
        assert service["environment"]["RAY_AUTH_MODE"] == "token"
        assert service["environment"]["RAY_AUTH_TOKEN_PATH"] == "/run/secrets/ray_auth_token"
        assert [secret["source"] for secret in service["secrets"]] == ["ray_auth_token"]
    for name in ("catalog", "trainer"):
        service = config["services"][name]
        assert service["environment"] == {"NCAFORGE_CATALOG_TOKEN_FILE": "/run/secrets/catalog_token"}
    for secret in config["secrets"].values():
        assert os.path.dirname(os.path.relpath(secret["file"], ROOT)) == "secrets"
    for ignore_file in (".gitignore", ".dockerignore"):
        with open(os.path.join(ROOT, ignore_file), encoding="utf-8") as f:
            assert {"secrets", "secrets/"} & set(f.read().split()), ignore_file
    for service in config["services"].values():  # no literal token anywhere in the environment
        assert not any("TOKEN" in key and not key.endswith(("_PATH", "_FILE", "_MODE")) for key in service.get("environment", {}))


@needs_compose
def test_published_ports_are_on_host_loopback_only():
    published = {name: service["ports"] for name, service in rendered_compose()["services"].items() if "ports" in service}
    assert set(published) == {"ray-head", "catalog"}  # the job server for ray job submit, and the catalog
    for ports in published.values():
        assert all(port.startswith("127.0.0.1:") for port in ports), ports  # docker-compose 1.x renders short syntax


@needs_compose
def test_with_the_gpu_file_workers_and_the_trainer_reserve_nvidia_gpus_and_without_it_nothing_does():
    with_gpus = rendered_compose(files=("docker-compose.yml", "docker-compose.gpu.yml"))["services"]
    for name in ("ray-worker", "trainer"):
        devices = with_gpus[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert not any("deploy" in service for service in rendered_compose()["services"].values())  # CPU hosts start


@needs_compose
def test_the_head_and_catalog_have_health_checks_that_the_jobs_wait_for():
    services = rendered_compose()["services"]
    assert command({"command": services["ray-head"]["healthcheck"]["test"][1:]})[:3] == ["ray", "job", "list"]
    assert "/healthz" in " ".join(services["catalog"]["healthcheck"]["test"])
    assert services["shards"]["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert services["trainer"]["depends_on"]["catalog"]["condition"] == "service_healthy"


@needs_compose
def test_the_shards_job_goes_through_the_jobs_api_with_the_pipeline_command_line():
    from generator.pipeline import build_parser

    argv = command(rendered_compose({"PIPELINE_OPTIONS": "--workers 8"})["services"]["shards"])
    submit, pipeline = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    assert submit == ["ray", "job", "submit", "--address", "http://ray-head:8265", "--working-dir", "."]
    assert pipeline[:3] == ["python", "-m", "generator.pipeline"]
    args = build_parser().parse_args(pipeline[3:])
    assert (args.band, args.sequences, args.seed, args.out, args.workers) == ("high", 160_000, 0, "/shards", 8)
    volumes = rendered_compose()["services"]["ray-head"]["volumes"]  # the job's driver runs on the head
    assert [volume.split(":")[1] for volume in volumes] == ["/shards"]


@needs_compose
def test_the_catalog_and_trainer_commands_parse_with_their_command_lines():
    from service.__main__ import build_parser as catalog_parser
    from trainer.config import resolve_config
    from trainer.main import parse_arguments

    services = rendered_compose({"DATASET": "high-160000-abc"})["services"]
    argv = command(services["catalog"])
    assert argv[:3] == ["python", "-m", "service"]
    args = catalog_parser().parse_args(argv[3:])
    assert (args.host, args.port, args.shards) == ("0.0.0.0", 8000, "/shards")
    assert all(volume.endswith(":ro") for volume in services["catalog"]["volumes"])
    argv = command(services["trainer"])
    assert argv[:4] == ["torchrun", "--standalone", "--nproc-per-node", "1"] and argv[4] == "trainer/main.py"
    config = resolve_config(*parse_arguments(argv[5:])[::2])
    assert config.data.train == "http://catalog:8000/v1/datasets/high-160000-abc"
    assert config.train.run_dir == "/runs/run"
    assert services["trainer"]["profiles"] == ["train"]  # started on request, once a dataset exists
