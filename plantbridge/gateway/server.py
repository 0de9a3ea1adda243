"""`plantbridge gateway`: the gateway under uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import uvicorn

from plantbridge.canonical.policy import PlantPolicy
from plantbridge.client import connect
from plantbridge.gateway.app import create_app
from plantbridge.gateway.deps import GatewayDeps, OrderSource
from plantbridge.gateway.settings import GatewaySettings
from plantbridge.store.db import Database


async def serve_async(settings: GatewaySettings, *, order_source: OrderSource | None = None,
                      policy_for: Callable[[str], PlantPolicy] | None = None) -> None:
    client = await connect(settings.temporal_address, settings.namespace)
    db = await Database(settings.store_url).init()
    queue = settings.task_queue

    def plant_policy(_plant: str) -> PlantPolicy:
        return PlantPolicy(task_queue=queue)

    deps = GatewayDeps(client=client, db=db, policy_for=policy_for or plant_policy, order_source=order_source,
                       ack_wait=timedelta(seconds=settings.ack_wait_s), body_limit=settings.body_limit)
    config = uvicorn.Config(create_app(deps), host=settings.gateway_host, port=settings.gateway_port,
                            log_level="info", access_log=False, lifespan="on")
    try:
        await uvicorn.Server(config).serve()
    finally:
        await db.close()


def serve(host: str | None = None, port: int | None = None, *, temporal: str | None = None,
          store_url: str | None = None, task_queue: str | None = None, order_source: OrderSource | None = None,
          policy_for: Callable[[str], PlantPolicy] | None = None) -> None:
    """Run the gateway until interrupted; arguments override `PLANTBRIDGE_*` settings."""
    settings = GatewaySettings.from_env(gateway_host=host, gateway_port=port, temporal_address=temporal,
                                        store_url=store_url, task_queue=task_queue)
    asyncio.run(serve_async(settings, order_source=order_source, policy_for=policy_for))
