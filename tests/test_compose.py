"""docker-compose.yml stays runnable without Docker here: its commands parse with the real command
lines, Ray and the catalog require tokens, and only the host's loopback is published."""

import os
import re
import shlex

import yaml

from tests.conftest import ROOT


def compose() -> dict:
    with open(os.path.join(ROOT, "docker-compose.yml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def command_with_defaults(service: dict) -> list:
    """The service's command with ${VAR:-default} replaced by its default, split like a shell."""
    return shlex.split(re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", service["command"]))


def test_every_ray_process_requires_a_token():
    services = compose()["services"]
    for name in ("ray-head", "ray-worker", "shards"):
        environment = services[name]["environment"]
        assert environment["RAY_AUTH_MODE"] == "token"
        assert environment["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?")  # compose refuses to start without it


def test_the_shards_job_parses_with_the_pipeline_command_line_and_joins_the_head():
    from generator.pipeline import build_parser

    argv = command_with_defaults(compose()["services"]["shards"])
    assert argv[:3] == ["python", "-m", "generator.pipeline"]
    args = build_parser().parse_args(argv[3:])
    assert args.ray_address == "ray-head:6379" and args.band == "high" and args.sequences == 160_000
    assert args.out == "/shards"


def test_the_catalog_is_published_on_host_loopback_only_and_requires_a_token():
    catalog = compose()["services"]["catalog"]
    assert catalog["ports"] == ["127.0.0.1:8000:8000"]
    assert catalog["environment"]["NCAFORGE_CATALOG_TOKEN"].startswith("${NCAFORGE_CATALOG_TOKEN:?")
    assert all(volume.endswith(":ro") for volume in catalog["volumes"])  # read-only shard folder
    assert "ports" not in compose()["services"]["ray-head"]  # Ray stays on the compose network


def test_the_catalog_command_parses_with_the_catalog_command_line():
    from service.__main__ import build_parser

    argv = command_with_defaults(compose()["services"]["catalog"])
    assert argv[:3] == ["python", "-m", "service"]
    args = build_parser().parse_args(argv[3:])
    assert (args.host, args.port, args.shards) == ("0.0.0.0", 8000, "/shards")
