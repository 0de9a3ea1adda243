"""The Odoo release poller's activity, and the worker's idempotent start of one poller per Odoo plant.

The activity reads confirmed MOs written since the cursor through the plant's Odoo connector
(`confirmed_since`), starts each saga not yet started (as the gateway's intake does: same start, same
`ErpSystem=odoo`), and hands over plant events that waited in the gateway's inbox for that order.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from plantbridge.canonical.order import workflow_id
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.client import start_order
from plantbridge.connectors.ports import ConnectorRegistry
from plantbridge.store.db import Database
from plantbridge.workflows.odoo_poller import (
    POLL_ACTIVITY,
    OdooReleasePollerWorkflow,
    PollerInput,
    PollRequest,
    PollResult,
    poller_id,
)

log = logging.getLogger("plantbridge.worker")


class OdooPollActivities:
    def __init__(self, registry: ConnectorRegistry, db: Database) -> None:
        self.registry = registry
        self.db = db

    def plants(self) -> dict[str, PlantConfig]:
        plants: dict[str, PlantConfig] = getattr(self.registry, "plants", {})
        return plants

    @activity.defn(name=POLL_ACTIVITY)
    async def poll(self, req: PollRequest) -> PollResult:
        cfg = self.plants().get(req.plant)
        erp: Any = self.registry.for_plant(req.plant).erp
        if cfg is None or cfg.erp.kind != "odoo" or not hasattr(erp, "confirmed_since"):
            return PollResult(cursor=req.cursor)  # the plant left Odoo: nothing to poll
        client = activity.client()
        rows = await erp.confirmed_since(req.cursor)
        cursor = req.cursor
        started: list[str] = []
        for row in rows:
            number = str(row["id"])
            if not await _started(client, workflow_id(req.plant, number)):
                order = await erp.read_order(number)
                policy = cfg.policy.model_copy(update={"task_queue": activity.info().task_queue})
                await start_order(client, order, policy)
                started.append(number)
                log.info("Odoo poller %s: started the saga of MO %s (%s)", req.plant, number, row.get("name"))
                await self._deliver_waiting(client, cfg, number)
            written = str(row.get("write_date") or "")
            cursor = max(cursor or "", written) or None
        return PollResult(cursor=cursor, started=started, seen=len(rows))

    async def _deliver_waiting(self, client: Client, cfg: PlantConfig, number: str) -> None:
        from plantbridge.gateway.deps import GatewayDeps
        from plantbridge.gateway.inbox import Intake

        deps = GatewayDeps(client=client, db=self.db, translate=cfg.translate_event, redrive_on_startup=False,
                           ack_wait=timedelta(seconds=5))
        await Intake(deps).deliver_waiting(cfg.plant, number)

    def all(self) -> list[object]:
        return [self.poll]


async def _started(client: Client, wf_id: str) -> bool:
    try:
        await client.get_workflow_handle(wf_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def start_odoo_pollers(client: Client, plants: dict[str, PlantConfig], task_queue: str) -> list[str]:
    """Start (idempotently: a running poller is kept) one release poller per Odoo plant."""
    ids = []
    for code, cfg in sorted(plants.items()):
        if cfg.erp.kind != "odoo":
            continue
        await client.start_workflow(
            OdooReleasePollerWorkflow.run, PollerInput(plant=code, interval_s=cfg.erp.poll_interval_s),
            id=poller_id(code), task_queue=task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        ids.append(poller_id(code))
    return ids
