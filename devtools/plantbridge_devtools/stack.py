"""The local stack of `plantbridge dev`: every process, its port, its log, its health check.

One child process per service, each in its own process group (so a Ctrl-C at the terminal reaches
only `plantbridge dev`, which then stops the children in order): the Temporal dev server, the SAP,
Odoo, MES, QMS and WMS simulators, the OPC UA machine simulator, the worker, the gateway and, when
the edge agent is installed, the edge agent. The landscape is hybrid: plants 1000 and 2000 on the
S/4HANA simulator, plant 3000 on the Odoo 19 simulator (seeded from its plant file by `odoo_seed.py`).
State (SQLite files, `<service>.log`, the rendered plant
files, `dev.json`) lives in the state directory.

Stopping: SIGTERM to every group (edge, gateway and worker first, Temporal last), SIGKILL to what is
still alive after the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml
from sqlalchemy import delete

from plantbridge import contract
from plantbridge.security.codec import new_key
from plantbridge.store.api_keys import ApiKeyRecord, ApiKeys
from plantbridge.store.db import Database, sqlite_url
from plantbridge_devtools.simulators.machines.security import SERVER_APPLICATION_URI, ensure_server_certificate
from plantbridge_devtools.temporal_server import DevServer, free_port

HOST = "127.0.0.1"
DEV_FILE = "dev.json"
ENV_FILE = "dev.env"
# What `dev.env` exports for `plantbridge batch|status|export …` run from another terminal.
ENV_FILE_VARS = ("PLANTBRIDGE_TEMPORAL_ADDRESS", "PLANTBRIDGE_TASK_QUEUE", "PLANTBRIDGE_CODEC_KEYS",
                 "PLANTBRIDGE_STORE_URL", "PLANTBRIDGE_PLANTS_DIR", "PLANTBRIDGE_STATE_DIR")
DEV_PLANTS = ("1000", "2000", "3000")
# The dev plant files ship inside this package (package data), so the stack runs from any install,
# not only from a checkout. pip installs packages unpacked, so the resource is a real folder.
PLANTS_DIR = Path(str(resources.files("plantbridge_devtools") / "plants"))
SIMULATORS = "plantbridge_devtools.simulators"  # python -m {SIMULATORS}.sap etc.
EDGE_FILE_PREFIX = "edge-"
MACHINES_PKI = "machines-pki"  # the OPC UA machine simulator's certificate and trust list, in the state dir
TASK_QUEUE = contract.TASK_QUEUE

# Secrets the plant files name; `plantbridge dev` sets them for its children (dev values only).
SAP_USER = "PLANTBRIDGE"
DEV_SECRETS: dict[str, str] = {
    "PLANTBRIDGE_DEV_SAP_PASSWORD": "secret",
    "PLANTBRIDGE_DEV_MES_KEY": "mes-dev-key",
    "PLANTBRIDGE_DEV_QMS_KEY": "qms-dev-key",
    "PLANTBRIDGE_DEV_WMS_KEY": "wms-dev-key",
    "PLANTBRIDGE_DEV_ODOO_KEY": "0d00de7a11bda9f5e4c0ffee0d00de7a11bda9f5",  # an Odoo API key is 40 hex digits
}
# Plant 3000's Odoo: the simulator's database and login (the API key above); the webhook token is
# drawn per start (`Stack.odoo_token`) and handed to the gateway in this variable.
ODOO_DATABASE, ODOO_LOGIN, ODOO_VERSION = "odoo", "admin", "19.0"
ODOO_WEBHOOK_ENV = "PLANTBRIDGE_DEV_ODOO_WEBHOOK"
# The gateway's dev API keys: dev.json `api_keys` name -> (role, source kind). `qms` sends quality
# results, holds and dispositions (which `plant-system` = mes may not: canonical/ownership.py).
KEY_ROLES: dict[str, tuple[str, str | None]] = {
    "erp": ("erp", None), "plant-system": ("plant-system", "mes"), "qms": ("plant-system", "qms"),
    "edge": ("edge", "edge"), "supervisor": ("supervisor", None)}


class StackError(RuntimeError):
    """The stack cannot start (port taken, a service died or never answered)."""


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


@dataclass(frozen=True)
class Ports:
    """ARCHITECTURE §4 defaults; `offset(n)` shifts them all, `free()` picks unused ones."""

    temporal: int = 7233
    ui: int = 8233
    temporal_http: int = 7243
    gateway: int = 8080
    sap: int = 8101
    mes: int = 8102
    qms: int = 8103
    wms: int = 8104
    machines_control: int = 8105
    odoo: int = 8106
    opcua: int = 4840
    codec: int = 8107

    def offset(self, n: int) -> Ports:
        return Ports(**{f.name: getattr(self, f.name) + n for f in fields(self)})

    @classmethod
    def free(cls) -> Ports:
        picked: set[int] = set()
        values: dict[str, int] = {}
        for f in fields(cls):
            port = free_port()
            while port in picked:
                port = free_port()
            picked.add(port)
            values[f.name] = port
        return cls(**values)

    def override(self, **ports: int | None) -> Ports:
        return replace(self, **{k: v for k, v in ports.items() if v is not None})

    def taken(self) -> list[str]:
        return [f"{f.name} {getattr(self, f.name)}" for f in fields(self) if port_in_use(getattr(self, f.name))]


@dataclass(frozen=True)
class StackUrls:
    temporal: str
    ui: str
    gateway: str
    sap: str
    mes: str
    qms: str
    wms: str
    opcua: str
    machines: str
    odoo: str
    codec: str

    @classmethod
    def of(cls, ports: Ports) -> StackUrls:
        http = f"http://{HOST}"
        return cls(temporal=f"{HOST}:{ports.temporal}", ui=f"{http}:{ports.ui}", gateway=f"{http}:{ports.gateway}",
                   sap=f"{http}:{ports.sap}", mes=f"{http}:{ports.mes}", qms=f"{http}:{ports.qms}",
                   wms=f"{http}:{ports.wms}", opcua=f"opc.tcp://{HOST}:{ports.opcua}/plantbridge/",
                   machines=f"{http}:{ports.machines_control}", odoo=f"{http}:{ports.odoo}",
                   codec=f"{http}:{ports.codec}")


HealthCheck = Callable[[], Awaitable[bool]]


@dataclass
class Service:
    name: str
    argv: list[str]
    url: str | None = None
    health: HealthCheck | None = None
    optional: bool = False  # its death is reported, not fatal (the edge agent hook)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    healthy: bool = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def edge_available() -> bool:
    """HOOK for the edge agent: started when `plantbridge.edge` can be run (`__main__`/`run_edge`)."""
    try:
        if importlib.util.find_spec("plantbridge.edge.__main__") is not None:
            return True
        cli = importlib.util.find_spec("plantbridge.edge.cli")
        if cli is None:
            return False
        module = importlib.import_module("plantbridge.edge.cli")
        return hasattr(module, "run_edge")
    except Exception:
        return False


def plant_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir()
                  if p.suffix in (".yaml", ".yml") and not p.name.startswith(EDGE_FILE_PREFIX))


def render_plants(source: Path, target: Path, urls: StackUrls) -> list[str]:
    """Copy the dev plant files into `target`, pointing each simulator-backed system at this stack's port.

    The ERP URL goes by the ERP's kind (hybrid landscape): `sap_odata` -> the SAP simulator, `odoo` -> the
    Odoo simulator; other kinds (reference, sap_rfc) keep theirs."""
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.yaml"):
        old.unlink()
    by_kind = {("erp", "sap_odata"): urls.sap, ("erp", "odoo"): urls.odoo, ("mes", "rest"): urls.mes,
               ("qms", "rest"): urls.qms, ("wms", "rest"): urls.wms}
    plants = []
    for path in plant_files(source):
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        for system in ("erp", "mes", "qms", "wms"):
            cfg = data.get(system)
            if isinstance(cfg, dict) and (system, str(cfg.get("kind"))) in by_kind:
                cfg["url"] = by_kind[system, str(cfg.get("kind"))]
        (target / path.name).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        plants.append(str(data.get("plant")))
    return plants


MQTT_BROKER = (HOST, 1883)
UNS_ENTERPRISE = "plantbridge-dev"


def local_broker() -> str | None:
    """The local MQTT broker's URL when one answers on 127.0.0.1:1883 (`plantbridge dev` starts none)."""
    try:
        with socket.create_connection(MQTT_BROKER, timeout=0.5):
            return f"mqtt://{MQTT_BROKER[0]}:{MQTT_BROKER[1]}"
    except OSError:
        return None


def render_edge_mqtt(source: Path, target: Path, urls: StackUrls, broker: str, group: str) -> Path | None:
    """Plant 2000's edge agent on the broker: the gateway URL and this stack's Sparkplug group."""
    src = source / "edge-2000.yaml"
    if not src.exists():
        return None
    data: dict[str, Any] = yaml.safe_load(src.read_text(encoding="utf-8")) or {}
    data["gateway"]["url"] = urls.gateway
    for endpoint in data["endpoints"].values():
        endpoint["url"] = broker
        endpoint["client_id"] = f"{group}-edge-2000"
    for machine in data["machines"]:
        machine["mqtt"]["group"] = group
    if isinstance(data.get("uns"), dict):
        data["uns"].update(url=broker, client_id=f"{group}-edge-2000-uns")
    out = target / src.name
    out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out


def render_edge(source: Path, target: Path, urls: StackUrls) -> Path | None:
    src = source / "edge-1000.yaml"
    if not src.exists():
        return None
    data: dict[str, Any] = yaml.safe_load(src.read_text(encoding="utf-8")) or {}
    if isinstance(data.get("gateway"), dict):
        data["gateway"]["url"] = urls.gateway
    for endpoint in (data.get("endpoints") or {}).values():
        if isinstance(endpoint, dict):
            endpoint["url"] = urls.opcua
    out = target / src.name
    out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return out


async def prepare_opcua_pki(state_dir: Path, edge_config: Path | None, opcua_url: str) -> None:
    """OPC UA over Basic256Sha256 SignAndEncrypt in the dev stack: the machine simulator's certificate
    (`<state>/machines-pki`) and the edge agent's (`plantbridge edge pki init`, the PKI its file names),
    each in the other's trust list. Kept across restarts while they fit."""
    server_cert, _ = await ensure_server_certificate(state_dir / MACHINES_PKI, SERVER_APPLICATION_URI,
                                                     urlsplit(opcua_url).hostname)
    if edge_config is None:
        return
    from plantbridge.edge.config import load_config as load_edge_config  # the edge agent is optional (hook)
    from plantbridge.edge.pki import edge_pki

    config = load_edge_config(edge_config)
    pki = edge_pki(config)
    own = await asyncio.to_thread(pki.init, config.application_uri, ["localhost", socket.gethostname()])
    (pki.trusted / "machine-simulator.der").write_bytes(server_cert.read_bytes())
    trusted = state_dir / MACHINES_PKI / "trusted"
    trusted.mkdir(parents=True, exist_ok=True)
    (trusted / f"{config.source}.der").write_bytes(own.cert.read_bytes())


async def create_dev_keys(store_url: str, plants: list[str]) -> dict[str, str]:
    """The dev API keys (replacing those of an earlier run): name -> key."""
    db = await Database(store_url).init()
    try:
        names = [f"dev-{name}" for name in KEY_ROLES]
        async with db.sessions() as session:
            await session.execute(delete(ApiKeyRecord).where(ApiKeyRecord.name.in_(names)))
            await session.commit()
        keys = ApiKeys(db)
        out: dict[str, str] = {}
        for name, (role, kind) in KEY_ROLES.items():
            _, key = await keys.create(f"dev-{name}", role, plants, kind=kind)
            out[name] = key
        return out
    finally:
        await db.close()


async def http_ok(url: str, headers: dict[str, str] | None = None) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            response = await client.get(url, headers=headers)
        return response.status_code == 200
    except httpx.HTTPError:
        return False


async def tcp_ok(url: str) -> bool:
    """Something accepts connections at the host and port of `url` (e.g. an OPC UA endpoint)."""
    parsed = urlsplit(url)
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(parsed.hostname, parsed.port), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def _both(first: Awaitable[bool], second: Awaitable[bool]) -> bool:
    return all(await asyncio.gather(first, second))  # both awaited (no "never awaited" warning)


async def log_says(path: Path, text: str) -> bool:
    """The process wrote `text` to its log (how the edge agent reports that it is connected)."""
    try:
        content = path.read_text(errors="replace")
    except OSError:
        return False
    return text in content.rsplit("\n=== ", 1)[-1]  # this run only: every start writes a `===` header


async def temporal_ok(address: str) -> bool:
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

    from plantbridge.client import connect

    try:
        client = await asyncio.wait_for(connect(address), 3)
        await client.workflow_service.get_system_info(GetSystemInfoRequest())
        return True
    except Exception:
        return False


async def worker_polling(address: str, task_queue: str) -> bool:
    """The worker is ready when it polls the saga's task queue."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    from plantbridge.client import connect

    try:
        client = await asyncio.wait_for(connect(address), 3)
        answer = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
        return len(answer.pollers) > 0
    except Exception:
        return False


class Stack:
    """Starts, watches and stops the dev processes; `info()` is what goes to dev.json."""

    def __init__(self, state_dir: Path, ports: Ports | None = None, *, plants_source: Path = PLANTS_DIR,
                 grace_s: float = 15.0, with_edge: bool = True, edge_gateway: str | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self.edge_gateway = edge_gateway  # the edge agents' gateway URL, when not the gateway's own (a proxy)
        self.ports = ports or Ports()
        self.urls = StackUrls.of(self.ports)
        self.plants_source = plants_source
        self.grace_s = grace_s
        self.with_edge = with_edge
        self.services: list[Service] = []
        self.api_keys: dict[str, str] = {}
        self.plants: list[str] = []
        self.started_at = 0.0
        self.mqtt: str | None = None  # the local broker, when one answers (plant 2000's machine, the UNS)
        self.edge_mqtt: Path | None = None
        self.odoo_token = secrets.token_urlsafe(24)  # plant 3000's webhook token (in the webhook URL)
        # Payloads in Temporal are encrypted with a per-stack key; the UI decodes through the codec
        # server under a per-stack path secret (urls.codec itself answers 401 without a supervisor key).
        self.codec_keys = new_key("dev")
        self.codec_secret = secrets.token_urlsafe(24)

    @property
    def mqtt_group(self) -> str:
        return f"plantbridge-dev-{self.ports.gateway}"

    @property
    def dev_file(self) -> Path:
        return self.state_dir / DEV_FILE

    @property
    def store_url(self) -> str:
        return sqlite_url(self.state_dir / "plantbridge.db")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLANTBRIDGE_")}
        env.update(DEV_SECRETS)
        env.update({
            "PLANTBRIDGE_TEMPORAL_ADDRESS": self.urls.temporal,
            "PLANTBRIDGE_TASK_QUEUE": TASK_QUEUE,
            "PLANTBRIDGE_STORE_URL": self.store_url,
            "PLANTBRIDGE_REFERENCE_URL": sqlite_url(self.state_dir / "reference-systems.db"),
            "PLANTBRIDGE_PLANTS_DIR": str(self.state_dir / "plants"),
            "PLANTBRIDGE_STATE_DIR": str(self.state_dir),
            "PLANTBRIDGE_GATEWAY_HOST": HOST,
            "PLANTBRIDGE_GATEWAY_PORT": str(self.ports.gateway),
            "PLANTBRIDGE_CODEC_KEYS": self.codec_keys,
            "PLANTBRIDGE_CODEC_PATH_SECRET": self.codec_secret,
            "PYTHONUNBUFFERED": "1",
            ODOO_WEBHOOK_ENV: self.odoo_token,
        })
        if "edge" in self.api_keys:
            env["PLANTBRIDGE_EDGE_KEY"] = self.api_keys["edge"]
        if self.mqtt is not None:  # the gateway publishes order states to the UNS
            env.update(PLANTBRIDGE_UNS_URL=self.mqtt, PLANTBRIDGE_UNS_ENTERPRISE=UNS_ENTERPRISE)
        return env

    # --- the processes ------------------------------------------------------------------------

    def _services(self, edge_config: Path | None) -> tuple[list[Service], list[Service]]:
        """(first wave: Temporal and the simulators; second wave: worker, gateway, edge)."""
        py = sys.executable
        p, u, s = self.ports, self.urls, self.state_dir
        temporal = DevServer(db_file=s / "temporal.db", port=p.temporal, ui_port=p.ui, http_port=p.temporal_http,
                             ui_codec_endpoint=f"{u.codec}/{self.codec_secret}")
        first = [
            Service("temporal", temporal.command(), url=u.temporal, health=lambda: temporal_ok(u.temporal)),
            Service("sap", [py, "-m", f"{SIMULATORS}.sap", "--port", str(p.sap), "--db", str(s / "sap.db"),
                            "--webhook", f"{u.gateway}/v1/erp/sap/events",
                            "--webhook-header", f"Authorization: Bearer {self.api_keys['erp']}",
                            "--user", f"{SAP_USER}:{DEV_SECRETS['PLANTBRIDGE_DEV_SAP_PASSWORD']}",
                            "--webhook-retry-for", "600",
                            "--log-level", "warning"],
                    url=u.sap, health=lambda: http_ok(f"{u.sap}/admin/health")),
            Service("odoo", [py, "-m", f"{SIMULATORS}.odoo", "--port", str(p.odoo), "--db", str(s / "odoo.db"),
                             "--version", ODOO_VERSION, "--database", ODOO_DATABASE, "--login", ODOO_LOGIN,
                             "--api-key", DEV_SECRETS["PLANTBRIDGE_DEV_ODOO_KEY"], "--log-level", "warning"],
                    url=u.odoo, health=lambda: http_ok(f"{u.odoo}/admin/health")),
            Service("mes", [py, "-m", f"{SIMULATORS}.mes", "--port", str(p.mes), "--db", str(s / "mes.db"),
                            "--plant", DEV_PLANTS[0], "--outbound", f"{u.gateway}/v1/plant/events",
                            "--outbound-token", self.api_keys["plant-system"],
                            "--api-key", DEV_SECRETS["PLANTBRIDGE_DEV_MES_KEY"], "--log-level", "warning"],
                    url=u.mes, health=lambda: http_ok(f"{u.mes}/admin/health")),
            Service("qms", [py, "-m", f"{SIMULATORS}.qms", "--port", str(p.qms), "--db", str(s / "qms.db"),
                            "--api-key", DEV_SECRETS["PLANTBRIDGE_DEV_QMS_KEY"], "--log-level", "warning"],
                    url=u.qms, health=lambda: http_ok(f"{u.qms}/admin/health")),
            Service("wms", [py, "-m", f"{SIMULATORS}.wms", "--port", str(p.wms), "--db", str(s / "wms.db"),
                            "--api-key", DEV_SECRETS["PLANTBRIDGE_DEV_WMS_KEY"], "--log-level", "warning"],
                    url=u.wms, health=lambda: http_ok(f"{u.wms}/admin/health")),
            Service("machines", [py, "-m", f"{SIMULATORS}.machines", "--endpoint", u.opcua,
                                 "--machines", "M01:ASSY-01:machinery,M02:MIX-20:packml",
                                 "--control-port", str(p.machines_control), "--security", "basic256sha256",
                                 "--cert-dir", str(s / MACHINES_PKI),
                                 "--trusted-dir", str(s / MACHINES_PKI / "trusted")],
                    url=u.opcua, health=lambda: _both(http_ok(f"{u.machines}/health"), tcp_ok(u.opcua))),
        ]
        second = [
            Service("worker", [py, "-m", "plantbridge.workers.cli", "worker", "--plants-dir", str(s / "plants")],
                    health=lambda: worker_polling(u.temporal, TASK_QUEUE)),
            Service("codec", [py, "-m", "plantbridge.workers.cli", "codec-server", "--port", str(p.codec),
                              "--ui-origin", u.ui],
                    url=u.codec, health=lambda: http_ok(f"{u.codec}/healthz")),
            Service("gateway", [py, "-m", "plantbridge.workers.cli", "gateway", "--port", str(p.gateway),
                                "--plants-dir", str(s / "plants")],
                    url=u.gateway, health=lambda: http_ok(f"{u.gateway}/healthz")),
        ]
        if edge_config is not None:
            # HOOK: the edge agent (plantbridge/edge, written separately). Optional: if it dies, dev goes on.
            edge_log = s / "edge.log"
            second.append(Service("edge", [py, "-m", "plantbridge.edge", "--config", str(edge_config)],
                                  optional=True, health=lambda: log_says(edge_log, " connected (")))
        if self.edge_mqtt is not None:
            mqtt_log = s / "edge-2000.log"
            second.append(Service("edge-2000", [py, "-m", "plantbridge.edge", "--config", str(self.edge_mqtt)],
                                  url=self.mqtt, optional=True, health=lambda: log_says(mqtt_log, " connected as ")))
        return first, second

    def _spawn(self, service: Service) -> None:
        self._popen(service)
        self.services.append(service)

    def respawn(self, service: Service) -> None:
        """Start a child that died again, with the same command line (Temporal: the same database file)."""
        service.healthy = False
        self._popen(service, "restarted by plantbridge dev: ")

    def _popen(self, service: Service, why: str = "") -> None:
        log = open(self.state_dir / f"{service.name}.log", "ab")
        try:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {why}{' '.join(service.argv)}\n".encode())
            log.flush()
            service.process = subprocess.Popen(service.argv, stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, env=self.env(), cwd=self.state_dir,
                                               start_new_session=True)
        finally:
            log.close()

    async def _wait_healthy(self, services: list[Service], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pending = [s for s in services if s.health is not None]
        while pending:
            for service in list(pending):
                if not service.alive():
                    rc = service.process.returncode if service.process is not None else None
                    log = self.state_dir / f"{service.name}.log"
                    if service.optional:
                        pending.remove(service)
                        continue
                    raise StackError(f"{service.name} exited with code {rc}; see {log}")
                assert service.health is not None
                if await service.health():
                    service.healthy = True
                    pending.remove(service)
            if pending and time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                raise StackError(f"no answer from {names} after {timeout_s:.0f} s; see the logs in {self.state_dir}")
            if pending:
                await asyncio.sleep(0.25)
        for service in services:
            if service.health is None:
                service.healthy = service.alive()

    async def start(self, timeout_s: float = 90.0) -> Stack:
        self.started_at = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        running = read_dev_file(self.state_dir)
        if running is not None and any(pid_alive(pid) for pid in running.get("pids", {}).values()):
            raise StackError(f"a `plantbridge dev` already runs from {self.state_dir} (see {self.dev_file})")
        taken = self.ports.taken()
        if taken:
            raise StackError("ports in use: " + ", ".join(taken) + " (another `plantbridge dev`? use --ports-offset "
                             "or --free-ports)")
        self.plants = render_plants(self.plants_source, self.state_dir / "plants", self.urls)
        self.api_keys = await create_dev_keys(self.store_url, sorted({*self.plants, *DEV_PLANTS}))
        edge_urls = replace(self.urls, gateway=self.edge_gateway or self.urls.gateway)
        edge_config = render_edge(self.plants_source, self.state_dir, edge_urls) if (
            self.with_edge and edge_available()) else None
        self.mqtt = local_broker() if edge_config is not None else None
        self.edge_mqtt = (render_edge_mqtt(self.plants_source, self.state_dir, edge_urls, self.mqtt, self.mqtt_group)
                          if self.mqtt is not None else None)
        await prepare_opcua_pki(self.state_dir, edge_config, self.urls.opcua)
        first, second = self._services(edge_config)
        try:
            for service in first:
                self._spawn(service)
            await self._wait_healthy(first[:1], timeout_s)  # the worker and the gateway need Temporal
            for service in second:
                self._spawn(service)
            await self._wait_healthy(first + second, max(10.0, timeout_s - (time.monotonic() - self.started_at)))
            await self.seed_odoo()
        except BaseException:
            self.stop()
            raise
        self.write_dev_file()
        return self

    async def seed_odoo(self) -> None:
        """Plant 3000's master data in the Odoo simulator (through Odoo's API) and the automation webhook
        pointing at the gateway with the plant's token (set through the admin API, so the token is in no argv)."""
        from plantbridge_devtools.odoo_seed import OdooApi, seed_plant

        api = OdooApi(self.urls.odoo, ODOO_DATABASE, DEV_SECRETS["PLANTBRIDGE_DEV_ODOO_KEY"])
        try:
            odoo_plants = []
            for path in plant_files(self.state_dir / "plants"):
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
                if (data.get("erp") or {}).get("kind") == "odoo":
                    await seed_plant(api, data)
                    odoo_plants.append(str(data["plant"]))
            if odoo_plants:  # one Odoo database, one automation rule: its plant's URL (the poller covers others)
                await api.admin("PATCH", "settings", {
                    "webhook_url": f"{self.urls.gateway}/v1/erp/odoo/events/{odoo_plants[0]}/{self.odoo_token}"})
        finally:
            await api.aclose()

    def info(self) -> dict[str, Any]:
        u = self.urls
        return {
            "urls": {"temporal": u.temporal, "ui": u.ui, "gateway": u.gateway, "sap": u.sap, "mes": u.mes,
                     "qms": u.qms, "wms": u.wms, "opcua": u.opcua, "machines": u.machines, "odoo": u.odoo,
                     "codec": u.codec},
            "odoo": {"database": ODOO_DATABASE, "login": ODOO_LOGIN, "api_key": DEV_SECRETS["PLANTBRIDGE_DEV_ODOO_KEY"],
                     "version": ODOO_VERSION},
            "pids": {s.name: s.pid for s in self.services if s.pid is not None},
            "api_keys": dict(self.api_keys),
            "plants": self.plants,
            "mqtt": {"url": self.mqtt, "group": self.mqtt_group, "edge_node": "plant-2000", "machine": "M20",
                     "uns": f"{UNS_ENTERPRISE}/#"} if self.edge_mqtt is not None else None,
            "state_dir": str(self.state_dir),
            "pid": os.getpid(),
        }

    def write_dev_file(self) -> None:
        tmp = self.dev_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info(), indent=2), encoding="utf-8")
        os.chmod(tmp, 0o600)  # it holds the dev API keys
        tmp.replace(self.dev_file)
        self.write_env_file()

    @property
    def env_file(self) -> Path:
        return self.state_dir / ENV_FILE

    def write_env_file(self) -> None:
        """`dev.env`: what a `plantbridge` command (batch, status, export) needs to reach this stack's Temporal
        and its worker, as shell exports (`source .plantbridge/dev.env`); it holds the payload codec key."""
        env = self.env()
        lines = [f"export {k}={shlex.quote(env[k])}" for k in ENV_FILE_VARS]
        tmp = self.env_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(self.env_file)

    def dead(self) -> list[Service]:
        return [s for s in self.services if s.process is not None and s.process.poll() is not None]

    def stop(self) -> None:
        """SIGTERM to every process group (clients first, Temporal last), then SIGKILL after the grace period."""
        self.dev_file.unlink(missing_ok=True)
        self.env_file.unlink(missing_ok=True)
        order = [s for s in reversed(self.services) if s.name != "temporal"]
        order += [s for s in self.services if s.name == "temporal"]
        for wave in (order[:-1], order[-1:]) if order and order[-1].name == "temporal" else (order,):
            for service in wave:
                _signal_group(service, signal.SIGTERM)
            deadline = time.monotonic() + self.grace_s
            for service in wave:
                if service.process is None:
                    continue
                try:
                    service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _signal_group(service, signal.SIGKILL)
                    service.process.wait()


def _signal_group(service: Service, sig: int) -> None:
    proc = service.process
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie is gone for our purposes
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
    return True


def read_dev_file(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / DEV_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
