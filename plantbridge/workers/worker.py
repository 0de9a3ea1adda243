"""`plantbridge worker`: runs the order saga and its activities on a task queue.

Graceful shutdown: SIGTERM / SIGINT stop polling, let running activities finish (up to the
graceful timeout) and leave workflow state to Temporal, so another worker carries on.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker, WorkflowRunner

from plantbridge.activities import all_activities
from plantbridge.activities.batch import BatchActivities
from plantbridge.activities.odoo_poll import OdooPollActivities, start_odoo_pollers
from plantbridge.canonical.batch_config import RetentionPolicy
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.client import connect
from plantbridge.connectors.ports import ConnectorRegistry
from plantbridge.connectors.reference import ReferenceStore
from plantbridge.store import AuditTrail, Database, Ledger
from plantbridge.telemetry import metrics_runtime, setup_tracing
from plantbridge.workers.plants import load_plants
from plantbridge.workers.registry import ConfiguredRegistry
from plantbridge.workers.runner import workflow_runner_for
from plantbridge.workers.schedules import sync_schedules
from plantbridge.workers.settings import Settings, state_dir
from plantbridge.workers.status import watch_business_metrics
from plantbridge.workers.timeouts import check_activity_timeouts
from plantbridge.workflows.batch.audit_archive import AuditArchiveWorkflow
from plantbridge.workflows.batch.masterdata_check import MasterDataCheckWorkflow
from plantbridge.workflows.batch.shift_summary import ShiftSummaryWorkflow
from plantbridge.workflows.maintenance import MaintenanceRequestWorkflow
from plantbridge.workflows.odoo_poller import OdooReleasePollerWorkflow
from plantbridge.workflows.production_order import ProductionOrderWorkflow

log = logging.getLogger("plantbridge.worker")

WORKFLOWS: list[type] = [ProductionOrderWorkflow, MaintenanceRequestWorkflow, ShiftSummaryWorkflow,
                          AuditArchiveWorkflow, MasterDataCheckWorkflow, OdooReleasePollerWorkflow]


def build_worker(
    client: Client, task_queue: str, registry: ConnectorRegistry, db: Database, *, max_concurrent_activities: int = 100,
    max_cached_workflows: int = 400, max_concurrent_workflow_tasks: int = 100, workflow_task_pollers: int = 5,
    activity_task_pollers: int = 5, extra_activities: list[object] | None = None,
    workflow_runner: WorkflowRunner | None = None,
) -> Worker:
    """The worker; without a runner, workflows run in plantbridge's sandbox (workers/runner.py)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[*all_activities(registry, Ledger(db), AuditTrail(db)),  # type: ignore[list-item]
                    *OdooPollActivities(registry, db).all(), *(extra_activities or [])],  # type: ignore[list-item]
        max_concurrent_activities=max_concurrent_activities,
        max_cached_workflows=max_cached_workflows,
        max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(maximum=workflow_task_pollers),
        activity_task_poller_behavior=PollerBehaviorSimpleMaximum(maximum=activity_task_pollers),
        graceful_shutdown_timeout=timedelta(seconds=10),
        workflow_runner=workflow_runner or workflow_runner_for(client.data_converter),
    )



async def run_worker(settings: Settings, *, registry: ConnectorRegistry | None = None) -> None:
    """Run until SIGTERM/SIGINT. Without a registry, the plant files make one (none: a configuration error)."""
    async with AsyncExitStack() as stack:
        db = await Database(settings.store_url).init()
        stack.push_async_callback(db.close)
        plants: dict[str, PlantConfig] = load_plants(settings.plants_dir) if settings.plants_dir else {}
        check_activity_timeouts(plants)
        for code, cfg in sorted(plants.items()):
            for endpoint in cfg.insecure_endpoints():  # allowed by `allow_insecure: true`
                log.warning("plant %s: INSECURE %s (allow_insecure: true in its plant file)", code, endpoint)
        if registry is None:
            store = await ReferenceStore(settings.reference_url).init()
            stack.push_async_callback(store.close)
            configured = ConfiguredRegistry(plants, store)
            stack.push_async_callback(configured.aclose)
            registry = configured
            log.info("plants configured: %s", ", ".join(sorted(plants)))
        setup_tracing("plantbridge-worker")
        client = await connect(settings.temporal_address, settings.namespace)
        if metrics_runtime() is not None:
            metrics_task = asyncio.create_task(watch_business_metrics(client, db))
            stack.callback(metrics_task.cancel)
        # The batch lane: shift summaries etc. on the same queue; schedules follow the plant files.
        retention = RetentionPolicy(audit_retention=settings.audit_retention,
                                    inbox_retention=settings.inbox_retention, waiting_ttl=settings.waiting_ttl)
        batch = BatchActivities(plants, db, state_dir() / "exports", retention)
        await sync_schedules(client, plants, settings.task_queue, audit_archive=True)
        worker = build_worker(client, settings.task_queue, registry, db,
                              max_concurrent_activities=settings.max_concurrent_activities,
                              max_cached_workflows=settings.max_cached_workflows,
                              max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
                              workflow_task_pollers=settings.workflow_task_pollers,
                              activity_task_pollers=settings.activity_task_pollers, extra_activities=batch.all(),
                              workflow_runner=workflow_runner_for(client.data_converter, settings))
        if settings.workflow_sandbox == "off":
            log.warning("workflows run without the sandbox (PLANTBRIDGE_WORKFLOW_SANDBOX=off)")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
        async with worker:
            plants_cfg = getattr(registry, "plants", {})
            if pollers := await start_odoo_pollers(client, plants_cfg, settings.task_queue):
                log.info("Odoo release pollers: %s", ", ".join(pollers))
            await stop.wait()
            log.info("shutting down: finishing running activities")
        log.info("worker stopped")
