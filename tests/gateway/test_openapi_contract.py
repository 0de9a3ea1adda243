"""The gateway's OpenAPI contract, tested as a schema-driven client would test it (issue 18).

Schemathesis (its CLI, in a separate process, over real HTTP) reads `/openapi.json` from a gateway on a free
port (the real Temporal dev server and the in-process worker of tests/conftest.py; its own store, so the
thousands of generated messages stay out of the shared inbox) and sends generated requests, valid and
invalid, with a supervisor key, a plant-system key and an ERP key, each to the operations of its role.
Checks: no 5xx, every status and body as documented (response schema conformance), content types and
headers as documented, invalid data refused, and no operation served without its declared auth.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from temporalio.client import Client

from plantbridge.connectors.memory import MemoryStore
from plantbridge.gateway.app import create_app
from plantbridge.gateway.deps import GatewayDeps
from plantbridge.gateway.openapi import render
from plantbridge.store import ApiKeys, Database, sqlite_url
from plantbridge_devtools.temporal_server import DevServer, free_port
from tests.conftest import new_order
from tests.gateway.conftest import gateway_policy

pytestmark = pytest.mark.heavy  # minutes, not seconds: `pytest -m 'not heavy'` for a quick loop

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
    "unsupported_method",
]
MAX_EXAMPLES = 5  # per operation and phase; the coverage phase adds its own bounded set of edge cases
# Which key tests which operations (by tag): each role against the operations it may call. In this order:
# the IDoc example starts order 1004157's saga, which the plant events and the supervisor's examples then meet.
# The published contracts (`GET /v1/schemas`, any role) last, with an edge key, so they do not change the
# supervisor run's generated sequence.
RUNS = {"erp": ("erp",), "plant-system": ("plant",), "supervisor": ("supervisor", "health"), "edge": ("contracts",)}
CHECKED_IN = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
REGENERATE = "python -m plantbridge.gateway.openapi_doc > docs/openapi.json"


@dataclass
class ContractGateway:
    url: str
    keys: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
async def contract_gateway(client: Client, worker: object, tmp_path_factory: pytest.TempPathFactory,
                           ) -> AsyncIterator[ContractGateway]:
    db = await Database(sqlite_url(tmp_path_factory.mktemp("contract") / "gateway.db")).init()
    source = MemoryStore().systems().erp  # its own ERP: the order below is seen by this gateway only
    # The SAP event example reads order 1004157 back: known to the ERP but not released, so it is recorded
    # (200) without starting a saga other tests could meet.
    source.put(new_order(number="1004157", released=False))
    deps = GatewayDeps(client=client, db=db, policy_for=gateway_policy, order_source=source,
                       ack_wait=timedelta(seconds=5), redrive_on_startup=False)
    app = create_app(deps)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
        if task.done():
            task.result()
    gw = ContractGateway(url=f"http://127.0.0.1:{port}")
    suffix = uuid.uuid4().hex[:6]
    for role in RUNS:
        _, key = await ApiKeys(db).create(f"contract-{role}-{suffix}", role, ["1000"])
        gw.keys[role] = key
    yield gw
    server.should_exit = True
    await task
    await db.close()


async def _schemathesis(gw: ContractGateway, role: str, out: Path) -> tuple[int, str, dict[str, object]]:
    report = out / f"{role}.json"
    args = [str(Path(sys.executable).with_name("st")), "run", f"{gw.url}/openapi.json",
            "--checks", ",".join(CHECKS), "-H", f"Authorization: Bearer {gw.keys[role]}",
            "--max-examples", str(MAX_EXAMPLES), "--seed", "18", "--phases", "examples,coverage,fuzzing",
            "--workers", "1", "--request-timeout", "30", "--no-color",
            "--report", "json", "--report-json-path", str(report)]
    for tag in RUNS[role]:
        args += ["--include-tag", tag]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)}
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, env=env)
    stdout, _ = await proc.communicate()
    data = json.loads(report.read_text()) if report.exists() else {}
    return proc.returncode or 0, stdout.decode(errors="replace"), data


@pytest.mark.parametrize("role", list(RUNS))
async def test_schemathesis_finds_nothing(contract_gateway: ContractGateway, role: str, tmp_path: Path) -> None:
    rc, text, report = await _schemathesis(contract_gateway, role, tmp_path)
    assert rc == 0, text
    assert report.get("complete") and not report["failures"] and not report["errors"], text
    cases = report["test_cases"]
    assert isinstance(cases, dict) and cases["generated"] > 0 and cases["with_failures"] == 0
    operations = report["operations"]
    assert isinstance(operations, dict) and operations["tested"] == operations["selected"] > 0
    # Each role's own operations answered 2xx at least once, so `ignored_auth` probed them without a key.
    rates = report["valid_rates"]
    assert isinstance(rates, dict)
    accepted = {op for op, phases in rates.items() if any(p["accepted"] for p in phases.values())}
    assert accepted, rates
    print(f"schemathesis {report['schemathesis_version']} as {role}: {cases['generated']} cases, "
          f"{operations['tested']} operations, 0 failures; served to a valid key: {sorted(accepted)}")


def test_checked_in_openapi_is_current() -> None:
    """docs/openapi.json is the app's schema, so contract changes show in review."""
    app = create_app(GatewayDeps(client=None, db=None))  # type: ignore[arg-type]  # only the schema is read
    assert CHECKED_IN.read_text() == render(app), f"docs/openapi.json is stale: run `{REGENERATE}`"


async def test_readyz_names_what_does_not_answer(client: Client, db: Database) -> None:
    """`/readyz`: 200 when Temporal and the store answer; 503 naming Temporal (with Retry-After) when it does not."""
    up = create_app(GatewayDeps(client=client, db=db))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=up), base_url="http://gw") as http:
        r = await http.get("/readyz")
        assert r.status_code == 200 and r.json() == {"status": "ok", "checks": {"temporal": "ok", "store": "ok"}}
    nowhere = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)  # nothing listens there
    down = create_app(GatewayDeps(client=nowhere, db=db))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=down), base_url="http://gw") as http:
        r = await http.get("/readyz")
        body = r.json()
        assert r.status_code == 503 and r.headers["retry-after"].isdigit(), r.text
        assert body["status"] == "unavailable" and body["checks"]["store"] == "ok"
        assert body["checks"]["temporal"] != "ok"
        assert (await http.get("/healthz")).json() == {"status": "ok"}  # liveness does not depend on Temporal


async def test_temporal_gone_is_503_with_retry_after(db: Database, tmp_path: Path) -> None:
    """A supervisor operation whose Temporal server went away answers 503 + Retry-After as documented (not 500)."""
    server = DevServer(db_file=tmp_path / "gone.db", port=free_port(), headless=True, log_file=tmp_path / "gone.log")
    await server.start()
    try:
        gone = await Client.connect(server.address)
    finally:
        server.stop()
    _, key = await ApiKeys(db).create(f"contract-gone-{uuid.uuid4().hex[:6]}", "supervisor", ["*"])
    app = create_app(GatewayDeps(client=gone, db=db))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        r = await http.get("/v1/orders", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 503 and r.headers["retry-after"].isdigit(), r.text
        assert r.json()["error"]["code"] == "temporal_unavailable"
