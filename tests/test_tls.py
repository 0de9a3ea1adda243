"""Issue 15 item 4: TLS in transit, with certificates generated in the test (a private CA).

- a connector to an HTTPS simulator (the QMS simulator served by uvicorn with TLS): trusted through
  the plant file's `ca_bundle`, refused without it, and with mutual TLS (`client_cert`);
- the Temporal client over TLS and mutual TLS: the dev server speaks plain gRPC, so the test puts a
  TLS-terminating TCP proxy (asyncio + ssl, ALPN h2) in front of it (mocked: only the TLS hop); a worker
  connected through it runs one order's whole saga, release to posted;
- `http://` to another host refused at plant-file load unless `allow_insecure: true`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from plantbridge.canonical import OrderState
from plantbridge.canonical.commands import Inspection
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.client import connect, start_order, submit_event
from plantbridge.connectors.errors import TransientError
from plantbridge.connectors.memory import MemoryRegistry, MemoryStore
from plantbridge.connectors.mes_rest import MesRestConnector
from plantbridge.connectors.qms_rest import QmsRestConnector
from plantbridge.connectors.rest_common import RestConnector
from plantbridge.connectors.wms_rest import WmsRestConnector
from plantbridge.gateway.server import serve_async
from plantbridge.gateway.settings import GatewaySettings
from plantbridge.store import Database
from plantbridge.store.api_keys import ApiKeys
from plantbridge.workers.worker import build_worker
from plantbridge_devtools.simulators.qms.app import create_app as qms_app
from plantbridge_devtools.temporal_server import DevServer
from tests.conftest import event, fast_policy, new_order, qty
from tests.connectors.test_plant_connectors import key, make_order
from tests.support import eventually, free_port, serve_app
from tests.support.certs import TestCA


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "pki")


def _plant(qms: dict[str, object]) -> PlantConfig:
    return PlantConfig.model_validate({
        "plant": "1000", "work_centers": [{"code": "ASSY-01"}, {"code": "TEST-01"}],
        "qms": {"kind": "rest", "api_key_env": "PB_TLS_TEST_QMS_KEY", "timeout_s": 5, **qms},
    })


async def test_connector_to_an_https_simulator_with_a_private_ca(
    ca: TestCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PB_TLS_TEST_QMS_KEY", "qms-dev-key")
    server = ca.issue("localhost", server=True)
    client = ca.issue("plantbridge-worker", server=False)
    sim = await serve_app(qms_app(str(tmp_path / "qms.db")), ssl_certfile=str(server.cert),
                          ssl_keyfile=str(server.key), ssl_ca_certs=str(ca.pem.cert),
                          ssl_cert_reqs=ssl.CERT_REQUIRED)
    try:
        assert sim.url.startswith("https://")
        cmd = Inspection(passed=True, operation="0020", characteristics=[])
        # Trusted through the plant file's CA bundle, presenting the client certificate (mTLS).
        plant = _plant({"url": sim.url, "ca_bundle": str(ca.pem.cert), "client_cert": str(client.cert),
                        "client_key": str(client.key)})
        conn: RestConnector = QmsRestConnector.from_plant(plant)
        try:
            result = await conn.inspection(make_order(), cmd, key=key("tls-1"), retry=False)  # type: ignore[attr-defined]
            assert result.documents[0].startswith("QMS QL-")
        finally:
            await conn.aclose()
        # Without the CA bundle: the system trust store does not know the private CA -> refused.
        untrusting = QmsRestConnector.from_plant(_plant({"url": sim.url, "client_cert": str(client.cert),
                                                         "client_key": str(client.key)}))
        with pytest.raises(TransientError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await untrusting.inspection(make_order(), cmd, key=key("tls-2"), retry=False)
        await untrusting.aclose()
        # Trusting the CA but without a client certificate: the server refuses the handshake.
        anonymous = QmsRestConnector.from_plant(_plant({"url": sim.url, "ca_bundle": str(ca.pem.cert)}))
        with pytest.raises(TransientError):
            await anonymous.inspection(make_order(), cmd, key=key("tls-3"), retry=False)
        await anonymous.aclose()
    finally:
        await sim.stop()


async def test_every_rest_connector_takes_the_plant_files_tls(ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PB_TLS_TEST_KEY", "k")
    client = ca.issue("plantbridge-worker", server=False)
    tls = {"kind": "rest", "url": "https://127.0.0.1:1", "api_key_env": "PB_TLS_TEST_KEY",
           "ca_bundle": str(ca.pem.cert), "client_cert": str(client.cert), "client_key": str(client.key)}
    plant = PlantConfig.model_validate({"plant": "1000", "mes": tls, "qms": tls, "wms": tls})
    for cls in (MesRestConnector, QmsRestConnector, WmsRestConnector):
        conn = cls.from_plant(plant)
        await conn.aclose()


def test_clear_http_to_another_host_is_refused_unless_allowed() -> None:
    with pytest.raises(ValidationError, match=r"qms: http://qms\.plant\.example:8080 is clear HTTP.*allow_insecure"):
        _plant({"url": "http://qms.plant.example:8080"})
    allowed = PlantConfig.model_validate({
        "plant": "1000", "allow_insecure": True,
        "qms": {"kind": "rest", "url": "http://qms.plant.example:8080", "api_key_env": "X"},
    })
    assert allowed.insecure_endpoints() == ["qms: http://qms.plant.example:8080 is clear HTTP to another host"]
    for url in ("http://127.0.0.1:8103", "http://localhost:8103", "http://[::1]:8103", "https://qms.plant.example"):
        assert _plant({"url": url}).insecure_endpoints() == []


@contextlib.asynccontextmanager
async def tls_proxy(target_port: int, context: ssl.SSLContext) -> AsyncIterator[int]:
    """A TLS-terminating TCP proxy in front of a plain gRPC server; yields its port."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    port = free_port()
    server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=context)
    async with server:
        yield port


def _server_context(ca: TestCA, *, require_client: bool) -> ssl.SSLContext:
    pem = ca.issue("localhost", server=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pem.cert, pem.key)
    context.set_alpn_protocols(["h2"])
    if require_client:
        context.load_verify_locations(ca.pem.cert)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def test_temporal_client_over_tls_and_mutual_tls(
    temporal_server: DevServer, ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = int(temporal_server.address.rsplit(":", 1)[1])
    worker_cert = ca.issue("plantbridge-worker", server=False)
    async with tls_proxy(target, _server_context(ca, require_client=True)) as port:
        monkeypatch.setenv("PLANTBRIDGE_TEMPORAL_TLS_CA", str(ca.pem.cert))
        monkeypatch.setenv("PLANTBRIDGE_TEMPORAL_TLS_SERVER_NAME", "localhost")
        # No client certificate: the proxy refuses the handshake.
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(connect(f"127.0.0.1:{port}"), 20)
        monkeypatch.setenv("PLANTBRIDGE_TEMPORAL_TLS_CERT", str(worker_cert.cert))
        monkeypatch.setenv("PLANTBRIDGE_TEMPORAL_TLS_KEY", str(worker_cert.key))
        client = await asyncio.wait_for(connect(f"127.0.0.1:{port}"), 20)
        # A real call through the TLS hop: the server answers.
        count = await client.count_workflows()
        assert count.count >= 0


async def test_worker_over_mutual_tls_runs_an_order_release_to_posted(
    temporal_server: DevServer, ca: TestCA, reference: MemoryStore, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's only way to Temporal is the mTLS proxy: its polls, activity results and the saga's
    timers all cross the TLS hop; the order goes from release to posted, its postings in the ERP."""
    target = int(temporal_server.address.rsplit(":", 1)[1])
    worker_cert = ca.issue("plantbridge-worker", server=False)
    monkeypatch.setenv("PLANTBRIDGE_TEMPORAL_TLS_CA", str(ca.pem.cert))
    monkeypatch.setenv("PLANTBRIDGE_TEMPORAL_TLS_SERVER_NAME", "localhost")
    monkeypatch.setenv("PLANTBRIDGE_TEMPORAL_TLS_CERT", str(worker_cert.cert))
    monkeypatch.setenv("PLANTBRIDGE_TEMPORAL_TLS_KEY", str(worker_cert.key))
    queue = f"plantbridge-tls-{uuid.uuid4().hex[:8]}"  # no other worker polls it
    async with tls_proxy(target, _server_context(ca, require_client=True)) as port:
        client = await asyncio.wait_for(connect(f"127.0.0.1:{port}"), 20)
        assert client.service_client.config.tls, "the client did not take the TLS settings"
        async with build_worker(client, queue, MemoryRegistry(reference), db):
            order = new_order()
            handle = await start_order(client, order, fast_policy(task_queue=queue))
            for op, wc in (("0010", "ASSY-01"), ("0020", "TEST-01")):
                started = await submit_event(client, event(order, "operation_started", operation=op, work_center=wc))
                assert started.status == "accepted", started
                done = await submit_event(client, event(order, "operation_confirmed", operation=op,
                                                        yield_qty=qty(100), final=True))
                assert done.status == "accepted", done
            result = await asyncio.wait_for(handle.result(), 60)
    assert result.state is OrderState.POSTED, result
    posted = {(c.system, c.operation) for c in reference.postings if c.order == order.number}
    assert {("erp", "confirm_operation"), ("erp", "goods_receipt"), ("mes", "dispatch")} <= posted, posted


def _edge_event(order: str) -> dict[str, object]:
    return {"event_id": f"tls-{uuid.uuid4().hex[:20]}", "event_type": "downtime_started", "source": "edge-1000",
            "plant": "1000", "order": order, "occurred_at": datetime.now(UTC).isoformat(),
            "work_center": "ASSY-01", "reason": "MAT"}


@contextlib.asynccontextmanager
async def https_gateway(settings: GatewaySettings) -> AsyncIterator[str]:
    task = asyncio.create_task(serve_async(settings))
    url = f"https://127.0.0.1:{settings.gateway_port}"
    try:
        async def listening() -> bool:
            if task.done():
                task.result()
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", settings.gateway_port)
            except OSError:
                return False
            writer.close()
            return True

        await eventually(listening, timeout=30, what="the gateway listens")
        yield url
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await task


async def test_gateway_over_https_with_an_edge_client_certificate(
    temporal_server: DevServer, db: Database, ca: TestCA
) -> None:
    suffix = uuid.uuid4().hex[:6]
    keys = ApiKeys(db)
    edge, edge_key = await keys.create(f"edge-1000-{suffix}", "edge", ["1000"])
    _, other_key = await keys.create(f"edge-2000-{suffix}", "edge", ["2000"])
    server = ca.issue("localhost", server=True)
    edge_cert = ca.issue(edge.name, server=False)

    def client_context(cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(ca.pem.cert))
        if cert is not None:
            context.load_cert_chain(cert, key)
        return context

    base = {"temporal_address": temporal_server.address, "store_url": db.url, "gateway_tls_cert": str(server.cert),
            "gateway_tls_key": str(server.key), "gateway_tls_client_ca": str(ca.pem.cert)}
    event = _edge_event("4999001")
    async with https_gateway(GatewaySettings.model_validate({**base, "gateway_port": free_port()})) as url:
        with_cert = client_context(edge_cert.cert, edge_cert.key)
        async with httpx.AsyncClient(base_url=url, verify=with_cert, timeout=30) as http:
            r = await http.post("/v1/plant/events", json=event, headers={"Authorization": f"Bearer {edge_key}"})
            assert r.status_code in (200, 202), r.text  # the edge, named by its certificate, with its own key
            # The certificate names another edge than the key (a stolen key used from edge 1000's box).
            r = await http.post("/v1/plant/events", json=_edge_event("4999001"),
                                headers={"Authorization": f"Bearer {other_key}"})
            assert r.status_code == 403 and r.json()["error"]["code"] == "certificate_mismatch", r.text
            assert "edge-" not in r.text  # the error names no key
        # Client certificates configured: an edge key without its certificate is refused.
        async with httpx.AsyncClient(base_url=url, verify=client_context(), timeout=30) as http:
            r = await http.post("/v1/plant/events", json=_edge_event("4999001"),
                                headers={"Authorization": f"Bearer {edge_key}"})
            assert r.status_code == 403 and r.json()["error"]["code"] == "certificate_required", r.text
        # Plain HTTP to the HTTPS port: no answer in clear.
        async with httpx.AsyncClient(base_url=url.replace("https", "http"), timeout=10) as http:
            with pytest.raises(httpx.HTTPError):
                (await http.get("/healthz")).raise_for_status()
    # Required at the handshake: without a certificate, no connection at all.
    required = {**base, "gateway_port": free_port(), "gateway_tls_client_required": True}
    async with https_gateway(GatewaySettings.model_validate(required)) as url:
        async with httpx.AsyncClient(base_url=url, verify=client_context(), timeout=10) as http:
            with pytest.raises(httpx.HTTPError):
                await http.get("/healthz")
        async with httpx.AsyncClient(base_url=url, verify=client_context(edge_cert.cert, edge_cert.key),
                                     timeout=10) as http:
            assert (await http.get("/healthz")).status_code == 200
