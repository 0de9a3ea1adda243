"""OPC UA security of the edge agent against real asyncua servers on loopback: Basic256Sha256
SignAndEncrypt with the server's certificate judged by the agent's trust list (trusted/ and
rejected/), the simulator's own trust list of client certificates, no password over security none,
no downgrade.

One secured simulator for the module (its start loads the NodeSets, the slow part); RSA keys are
made once per module (the server's, the agent's) plus one for a stranger and one by the CLI test.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncua import Client, ua
from asyncua.ua.uaerrors import UaError
from cryptography import x509
from typer.testing import CliRunner

from plantbridge.edge import ConfigError, EdgeAgent, load_config
from plantbridge.edge.pki import Pki, thumbprint
from plantbridge.workers.cli import app
from plantbridge_devtools.simulators.machines import MachineSimulator, MachineSpec

from .conftest import Receiver, connected, edge_config_dict, free_port, wait_for

APP_URI = "urn:plantbridge:test:edge-1000"
USER, PASSWORD = "edge", "s3cret"

MakeAgent = Callable[..., EdgeAgent]


@dataclass
class Secured:
    sim: MachineSimulator
    server_cert: Path  # the simulator's certificate (DER)
    edge: Pki  # the agent's certificate and key, made once; each test copies them into its own PKI
    server_trusted: Path  # the simulator's trust list of client certificates


@pytest.fixture(scope="module")
async def secured(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Secured]:
    root = tmp_path_factory.mktemp("opcua-security")
    edge = Pki(root / "edge")
    edge.init(APP_URI, ["localhost"])
    server_trusted = root / "server-trusted"
    server_trusted.mkdir()
    shutil.copy(edge.cert, server_trusted / "edge-1000.der")
    sim = MachineSimulator(f"opc.tcp://127.0.0.1:{free_port()}/plantbridge/",
                           [MachineSpec("M01", work_center="ASSY-01")], security="basic256sha256",
                           cert_dir=root / "server", users={USER: PASSWORD}, trusted_dir=server_trusted)
    await sim.start()
    yield Secured(sim, root / "server" / "server_cert.der", edge, server_trusted)
    await sim.stop()


def edge_pki(tmp_path: Path, secured: Secured, *, trust_server: bool) -> Pki:
    """This test's PKI: the module's agent certificate, the server's certificate trusted or not."""
    pki = Pki(tmp_path / "pki")
    for folder in (pki.trusted, pki.rejected, pki.cert.parent, pki.key.parent):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(secured.edge.cert, pki.cert)
    shutil.copy(secured.edge.key, pki.key)
    if trust_server:
        shutil.copy(secured.server_cert, pki.trusted / "machine-simulator.der")
    return pki


def secure_endpoint(url: str, **extra: Any) -> dict[str, Any]:
    return {"sim": {"url": url, "username_env": "EDGE_OPC_USER", "password_env": "EDGE_OPC_PASSWORD",
                    "publishing_interval_ms": 50, "reconnect_initial_s": 0.2, "reconnect_max_s": 0.5,
                    "watchdog_s": 0.5, **extra}}


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_OPC_USER", USER)
    monkeypatch.setenv("EDGE_OPC_PASSWORD", PASSWORD)


async def test_encrypted_session_with_a_trusted_server(
    tmp_path: Path, secured: Secured, receiver: Receiver, make_agent: MakeAgent, credentials: None
) -> None:
    pki = edge_pki(tmp_path, secured, trust_server=True)
    await secured.sim.set_order("M01", "1004190", "0010")
    await secured.sim.run("M01")
    agent = make_agent(secured.sim.endpoint, receiver.url, ["M01"], endpoints=secure_endpoint(secured.sim.endpoint),
                       opcua={"application_uri": APP_URI, "pki_dir": str(pki.root)})
    await agent.start()
    try:
        await connected(agent)
        session = agent.sessions[0]
        client = session._client  # type: ignore[union-attr]
        assert client is not None
        policy = client.security_policy
        assert policy.URI == "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
        assert policy.Mode == ua.MessageSecurityMode.SignAndEncrypt
        await secured.sim.stop_machine("M01", "BREAKDOWN")
        await wait_for(lambda: receiver.events("M01", "downtime_started"), what="an event over the encrypted channel")
    finally:
        await agent.stop()
    assert receiver.events("M01", "downtime_started")[0]["reason"] == "BRK-01"
    assert not any(pki.rejected.iterdir())


async def test_untrusted_server_refused_written_to_rejected_then_trusted_by_moving_it(
    tmp_path: Path, secured: Secured, receiver: Receiver, make_agent: MakeAgent, credentials: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pki = edge_pki(tmp_path, secured, trust_server=False)
    agent = make_agent(secured.sim.endpoint, receiver.url, ["M01"], endpoints=secure_endpoint(secured.sim.endpoint),
                       opcua={"application_uri": APP_URI, "pki_dir": str(pki.root)})
    caplog.set_level(logging.ERROR, logger="plantbridge.edge.session")
    await agent.start()
    try:
        session = agent.sessions[0]
        await wait_for(lambda: list(pki.rejected.glob("*.der")), what="the server's certificate in rejected/")
        rejected = next(pki.rejected.glob("*.der"))
        assert rejected.read_bytes() == secured.server_cert.read_bytes()
        assert thumbprint(rejected.read_bytes()) in rejected.name
        await wait_for(lambda: session.stats.last_error, what="the refusal")
        assert "is not trusted" in str(session.stats.last_error) and str(rejected) in str(session.stats.last_error)
        assert any(str(rejected) in r.getMessage() for r in caplog.records), "the log names the file"
        assert session.stats.connects == 0 and not session.stats.connected

        rejected.rename(pki.trusted / rejected.name)  # the operator's decision, no restart
        await connected(agent)
        assert session.stats.connects == 1
    finally:
        await agent.stop()


async def test_server_refusing_the_agents_certificate_is_named_then_trusted_without_restart(
    tmp_path: Path, secured: Secured, receiver: Receiver, make_agent: MakeAgent, credentials: None
) -> None:
    stranger = Pki(tmp_path / "pki")  # an agent the simulator's trust list does not know (its own key)
    stranger.init("urn:plantbridge:test:stranger", ["localhost"])
    shutil.copy(secured.server_cert, stranger.trusted / "machine-simulator.der")
    agent = make_agent(secured.sim.endpoint, receiver.url, ["M01"], endpoints=secure_endpoint(secured.sim.endpoint),
                       opcua={"application_uri": "urn:plantbridge:test:stranger", "pki_dir": str(stranger.root)})
    await agent.start()
    try:
        session = agent.sessions[0]
        await wait_for(lambda: "refused this agent's certificate" in str(session.stats.last_error),
                       what="the server's refusal, explained")
        error = str(session.stats.last_error)
        assert str(stranger.cert) in error and "BadCertificateUntrusted" in error
        assert thumbprint(stranger.cert.read_bytes()) in error and session.stats.connects == 0
        shutil.copy(stranger.cert, secured.server_trusted / "stranger.der")  # the simulator reads it per session
        await connected(agent)
    finally:
        await agent.stop()
        (secured.server_trusted / "stranger.der").unlink(missing_ok=True)


async def test_server_offering_only_sign_and_encrypt_refuses_a_none_client(
    tmp_path: Path, secured: Secured, receiver: Receiver, make_agent: MakeAgent, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises((UaError, ConnectionError, OSError, TimeoutError)):
        async with Client(secured.sim.endpoint, timeout=5):  # an anonymous client on SecurityPolicy None
            pass
    insecure = {"sim": {"url": secured.sim.endpoint, "security": "none", "allow_insecure": True,
                        "reconnect_initial_s": 0.2, "reconnect_max_s": 0.5, "watchdog_s": 0.5}}
    caplog.set_level(logging.WARNING, logger="plantbridge.edge.pki")
    agent = make_agent(secured.sim.endpoint, receiver.url, ["M01"], endpoints=insecure)
    await agent.start()
    try:
        assert any("security none (allow_insecure)" in r.getMessage() for r in caplog.records), "warned at start"
        session = agent.sessions[0]
        await wait_for(lambda: session.stats.last_error, what="the server's refusal")
        assert session.stats.connects == 0
    finally:
        await agent.stop()


async def test_agent_does_not_downgrade_to_a_server_without_security(
    tmp_path: Path, sim: MachineSimulator, secured: Secured, receiver: Receiver, make_agent: MakeAgent
) -> None:
    pki = edge_pki(tmp_path, secured, trust_server=True)
    endpoint = {"sim": {"url": sim.endpoint, "reconnect_initial_s": 0.2, "reconnect_max_s": 0.5}}  # secure default
    agent = make_agent(sim.endpoint, receiver.url, ["M01"], endpoints=endpoint,
                       opcua={"application_uri": APP_URI, "pki_dir": str(pki.root)})
    await agent.start()
    try:
        session = agent.sessions[0]
        await wait_for(lambda: session.stats.last_error, what="the refusal to downgrade")
        assert "offers no Basic256Sha256 SignAndEncrypt endpoint (it offers None None)" in str(session.stats.last_error)
        assert session.stats.connects == 0
    finally:
        await agent.stop()


def test_password_over_none_and_silent_none_refused_at_load(tmp_path: Path) -> None:
    data = edge_config_dict("opc.tcp://127.0.0.1:4840/", "http://127.0.0.1:8080", ["M01"], tmp_path)
    path = tmp_path / "edge.yaml"
    data["endpoints"]["sim"].update(username_env="EDGE_OPC_USER", password_env="EDGE_OPC_PASSWORD")
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"endpoints\.sim: a password over security none travels in clear"):
        load_config(path)
    del data["endpoints"]["sim"]["allow_insecure"], data["endpoints"]["sim"]["username_env"]
    del data["endpoints"]["sim"]["password_env"]
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"endpoints\.sim: security none .* allow_insecure: true"):
        load_config(path)
    data["endpoints"]["sim"]["security"] = "basic256sha256"  # with a password: fine, encrypted
    data["endpoints"]["sim"].update(username_env="EDGE_OPC_USER", password_env="EDGE_OPC_PASSWORD")
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert load_config(path).opcua_endpoints()["sim"].secure


async def test_missing_client_certificate_stops_the_start_naming_the_command(
    tmp_path: Path, receiver: Receiver, make_agent: MakeAgent, credentials: None
) -> None:
    agent = make_agent("opc.tcp://127.0.0.1:1/", receiver.url, ["M01"],
                       endpoints=secure_endpoint("opc.tcp://127.0.0.1:1/"), opcua={"pki_dir": "pki"})
    with pytest.raises(ConfigError, match=r"certificate or key is missing .*plantbridge edge pki init"):
        await agent.start()


def test_pki_init_command(tmp_path: Path) -> None:
    data = edge_config_dict("opc.tcp://127.0.0.1:4840/", "http://127.0.0.1:8080", ["M01"], tmp_path,
                            opcua={"application_uri": APP_URI, "pki_dir": "pki"})
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    runner = CliRunner()
    args = ["edge", "pki", "init", "--config", str(path), "--hostname", "edge-1000.plant.example"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    pki = Pki(tmp_path / "pki")
    for folder in (pki.trusted, pki.crl, pki.rejected):
        assert folder.is_dir()
    cert = x509.load_der_x509_certificate(pki.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [APP_URI]
    assert san.get_values_for_type(x509.DNSName) == ["edge-1000.plant.example"]
    assert pki.key.stat().st_mode & 0o077 == 0
    thumb = thumbprint(pki.cert.read_bytes())
    assert thumb in result.output and "created" in result.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "kept" in again.output and thumbprint(pki.cert.read_bytes()) == thumb
    assert pki.check_own(APP_URI) is not None
    with pytest.raises(Exception, match="not the configured application URI"):
        pki.check_own("urn:someone:else")
