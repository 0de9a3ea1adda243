"""The production-like `docker-compose.yml` is valid Compose and wires what it promises."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"


def test_compose_file_parses_with_docker_compose() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (.ci/run installs Debian's docker-compose)")
    result = subprocess.run([binary, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
                            cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr


def test_compose_services_and_search_attributes() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"postgresql", "temporal", "temporal-ui", "plantbridge-worker", "plantbridge-gateway", "plantbridge-edge",
            "plantbridge-db", "otel-collector"} <= set(services)
    for name in ("plantbridge-worker", "plantbridge-gateway", "plantbridge-edge", "plantbridge-db", "temporal"):
        assert "healthcheck" in services[name], f"{name} has no health check"
    assert services["plantbridge-worker"]["environment"]["PLANTBRIDGE_STORE_URL"].startswith("postgresql+asyncpg://")
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
    assert "DB" in services["temporal"]["environment"] and services["temporal"]["environment"]["DB"] == "postgres12"
    # Every search attribute the saga sets is registered.
    from plantbridge.workflows.search_attributes import dev_server_args

    command = " ".join(services["temporal-setup"]["command"])
    for arg in dev_server_args()[1::2]:
        assert arg in command, arg
    # Ports bind to localhost only: the UI and frontend have no auth of their own.
    for svc in services.values():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port


def test_compose_edge_config_is_valid() -> None:
    from plantbridge.edge.config import load_config

    cfg = load_config(ROOT / "deploy" / "edge-1000.yaml")
    assert cfg.gateway.url == "http://plantbridge-gateway:8080"
