"""The production-like `docker-compose.yml` is valid Compose and wires what it promises."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
# Values for the secrets the compose file requires (`${VAR:?}`): test placeholders only.
SECRETS = {
    "TEMPORAL_DB_PASSWORD": "t-secret", "PLANTBRIDGE_DB_PASSWORD": "p-secret", "PLANTBRIDGE_EDGE_KEY": "e-key",
    "TEMPORAL_UI_OIDC_PROVIDER_URL": "https://idp.example", "TEMPORAL_UI_OIDC_CLIENT_ID": "temporal-ui",
    "TEMPORAL_UI_OIDC_CLIENT_SECRET": "c-secret", "TEMPORAL_UI_OIDC_CALLBACK_URL": "https://ui.example/auth/sso/callback",
}


def test_compose_file_parses_with_docker_compose() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (.ci/run installs Debian's docker-compose)")
    env = {**os.environ, **SECRETS}
    result = subprocess.run([binary, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
                            cwd=ROOT, check=False, env=env)
    assert result.returncode == 0, result.stderr
    # Without its secrets the stack refuses to start (no defaulted password).
    bare = {k: v for k, v in os.environ.items() if k not in SECRETS}
    refused = subprocess.run([binary, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
                             cwd=ROOT, check=False, env=bare)
    assert refused.returncode != 0 and "set " in refused.stderr, refused.stderr


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
    assert all(e.security == "basic256sha256" and e.mode == "sign_and_encrypt" for e in cfg.opcua_endpoints().values())
    assert str(cfg.opcua.pki_dir).startswith("/data/")  # on the writable edge volume (rejected/ is written)


def test_compose_requires_secrets_and_defaults_none() -> None:
    text = COMPOSE.read_text()
    for name in SECRETS:
        assert re.search(r"\$\{" + name + r":\?", text), f"{name} is not required"
    # No secret-looking variable has a default.
    for var in re.findall(r"\$\{([A-Z0-9_]*(?:PASSWORD|SECRET|KEY)[A-Z0-9_]*):-", text):
        assert var == "PLANTBRIDGE_SAP_PASSWORD", f"{var} has a default"


def test_compose_edge_cannot_reach_the_stores() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]

    def nets(name: str) -> set[str]:
        return set(services[name].get("networks", ["default"]))

    for store in ("plantbridge-db", "postgresql", "temporal", "plantbridge-worker", "temporal-ui"):
        assert not nets("plantbridge-edge") & nets(store), f"the edge shares a network with {store}"
    assert nets("plantbridge-edge") & nets("plantbridge-gateway"), "the edge must reach the gateway"
    assert nets("plantbridge-gateway") & nets("plantbridge-db") and nets("plantbridge-worker") & nets("temporal")
    assert "PLANTBRIDGE_STORE_URL" not in services["plantbridge-edge"]["environment"]


def test_compose_temporal_ui_has_oidc_and_no_unsafe_levers() -> None:
    ui = yaml.safe_load(COMPOSE.read_text())["services"]["temporal-ui"]["environment"]
    assert ui["TEMPORAL_AUTH_ENABLED"] == "true" and ui["TEMPORAL_AUTH_TYPE"] == "oidc"
    for flag in ("TEMPORAL_WORKFLOW_TERMINATE_DISABLED", "TEMPORAL_WORKFLOW_RESET_DISABLED",
                 "TEMPORAL_START_WORKFLOW_DISABLED", "TEMPORAL_WORKFLOW_UPDATE_DISABLED"):
        assert ui[flag] == "true", flag
    assert "TEMPORAL_WORKFLOW_CANCEL_DISABLED" not in ui  # cancel compensates (patch temporal-cancel-compensates)
