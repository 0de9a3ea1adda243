"""`plantbridge gateway`: the gateway under uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn
from temporalio.client import Client

from plantbridge.canonical.batch_config import DirectoryExport
from plantbridge.canonical.events import EventType
from plantbridge.canonical.ownership import SourceKind, event_sources
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.canonical.policy import PlantPolicy
from plantbridge.client import connect
from plantbridge.connectors.ports import OrderSource
from plantbridge.gateway.app import create_app
from plantbridge.gateway.deps import GatewayDeps, default_telemetry_root
from plantbridge.gateway.ratelimit import parse_rates
from plantbridge.gateway.settings import GatewaySettings
from plantbridge.gateway.tls import uvicorn_tls_options
from plantbridge.gateway.uns import OrderStates
from plantbridge.store.db import Database
from plantbridge.telemetry import setup_tracing


def idoc_plant_map(plants: dict[str, PlantConfig]) -> dict[str, str]:
    """The IDoc plant codes (WERKS) the plant files name in `erp.idoc_plants` -> their canonical plant.

    A code claimed by two plant files is refused: an IDoc must never reach the wrong plant's sagas."""
    mapping: dict[str, str] = {}
    for plant, cfg in sorted(plants.items()):
        for code in cfg.erp.idoc_plants:
            if mapping.get(code, plant) != plant:
                raise ValueError(f"IDoc plant {code!r} is claimed by plant files {mapping[code]} and {plant}")
            mapping[code] = plant
    return mapping


def gateway_deps(settings: GatewaySettings, client: Client, db: Database, *,
                 order_source: OrderSource | None = None,
                 policy_for: Callable[[str], PlantPolicy] | None = None,
                 plants: dict[str, PlantConfig] | None = None,
                 order_sources: dict[str, OrderSource] | None = None,
                 odoo_tokens: dict[str, str] | None = None) -> GatewayDeps:
    """The gateway's dependencies, the one way: plant policies (on the settings' task queue), the plants'
    cross-references, ERP order sources and Odoo tokens. `plantbridge replay` builds its own with this too."""
    queue = settings.task_queue
    plants = plants or {}
    # Built once here, not per request: each plant's policy (on the task queue) and rule table.
    policies = {plant: cfg.policy.model_copy(update={"task_queue": queue}) for plant, cfg in plants.items()}
    no_file_policy = PlantPolicy().model_copy(update={"task_queue": queue})
    rules = {plant: cfg.event_rules() for plant, cfg in plants.items()}
    default_rules = event_sources()

    def plant_policy(plant: str) -> PlantPolicy:
        return policies.get(plant, no_file_policy)

    def translate(event: dict[str, Any]) -> dict[str, Any]:
        cfg = plants.get(str(event.get("plant")))
        return cfg.translate_event(event) if cfg is not None else event

    def telemetry_root(plant: str) -> Path:
        cfg = plants.get(plant)
        if cfg is not None and isinstance(cfg.exports, DirectoryExport):
            return Path(cfg.exports.path) / "telemetry"
        return default_telemetry_root(plant)  # no plant file, or an HTTP export target: kept here

    def event_rules(plant: str) -> dict[EventType, tuple[SourceKind, ...]]:
        return rules.get(plant, default_rules)

    return GatewayDeps(client=client, db=db, policy_for=policy_for or plant_policy, order_source=order_source,
                       idoc_plant_map=idoc_plant_map(plants),
                       ack_wait=timedelta(seconds=settings.ack_wait_s), body_limit=settings.body_limit,
                       idoc_body_limit=settings.idoc_body_limit,
                       translate=translate, order_sources=order_sources or {}, odoo_tokens=odoo_tokens or {},
                       inbox_lease=timedelta(seconds=settings.inbox_lease_s),
                       max_clock_skew=timedelta(seconds=settings.max_clock_skew_s),
                       rate_limits=parse_rates(settings.rate_limits), max_orders_per_idoc=settings.max_orders_per_idoc,
                       event_rules=event_rules, telemetry_root=telemetry_root)


def gateway_deps_from_plants(settings: GatewaySettings, client: Client, db: Database) -> GatewayDeps:
    """`gateway_deps` for the plant files of `settings.plants_dir` (as `plantbridge gateway` serves them)."""
    from plantbridge.workers.plants import load_plants
    from plantbridge.workers.registry import erp_order_source, odoo_intake

    plants = load_plants(settings.plants_dir) if settings.plants_dir else {}
    sources, tokens = odoo_intake(plants)
    return gateway_deps(settings, client, db, plants=plants, order_source=erp_order_source(plants),
                        order_sources=sources, odoo_tokens=tokens)


async def serve_async(settings: GatewaySettings, *, order_source: OrderSource | None = None,
                      policy_for: Callable[[str], PlantPolicy] | None = None,
                      plants: dict[str, PlantConfig] | None = None,
                      order_sources: dict[str, OrderSource] | None = None,
                      odoo_tokens: dict[str, str] | None = None) -> None:
    """Serve until interrupted. With plant files: their policies, cross-references and ERP order source."""
    setup_tracing("plantbridge-gateway")
    client = await connect(settings.temporal_address, settings.namespace)
    db = await Database(settings.store_url).init()
    deps = gateway_deps(settings, client, db, order_source=order_source, policy_for=policy_for, plants=plants,
                        order_sources=order_sources, odoo_tokens=odoo_tokens)
    uns_config = settings.uns()
    if uns_config is not None:
        deps.uns = OrderStates.from_config(uns_config, client)
    app = create_app(deps)
    # Client certificates configured: an edge key must come with its certificate (auth.py).
    app.state.edge_cert_required = bool(settings.gateway_tls_client_ca)
    tls = uvicorn_tls_options(settings.gateway_tls_cert, settings.gateway_tls_key, settings.gateway_tls_client_ca,
                              settings.gateway_tls_client_required)
    # Idle keep-alive connections are kept 75 s (uvicorn's default is 5 s): a client that reuses a
    # connection just as the server closes it gets a read error on a request that was never read
    # (httpx keeps idle connections 5 s, plant systems often longer).
    config = uvicorn.Config(app, host=settings.gateway_host, port=settings.gateway_port,
                            log_level="info", access_log=False, lifespan="on", timeout_keep_alive=75, **tls)
    try:
        await uvicorn.Server(config).serve()
    finally:
        if deps.uns is not None:
            await deps.uns.close()
        await db.close()


def serve(host: str | None = None, port: int | None = None, *, temporal: str | None = None,
          store_url: str | None = None, task_queue: str | None = None, order_source: OrderSource | None = None,
          policy_for: Callable[[str], PlantPolicy] | None = None, plants: dict[str, PlantConfig] | None = None,
          order_sources: dict[str, OrderSource] | None = None, odoo_tokens: dict[str, str] | None = None) -> None:
    """Run the gateway until interrupted; arguments override `PLANTBRIDGE_*` settings."""
    settings = GatewaySettings.from_env(gateway_host=host, gateway_port=port, temporal_address=temporal,
                                        store_url=store_url, task_queue=task_queue)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve_async(settings, order_source=order_source, policy_for=policy_for, plants=plants,
                               order_sources=order_sources, odoo_tokens=odoo_tokens))


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (a dependency but on Windows), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
