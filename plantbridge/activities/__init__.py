"""Temporal activities: thin, idempotent wrappers over connectors and the store."""

from __future__ import annotations

from plantbridge.activities.audit import AuditActivities
from plantbridge.activities.erp import ErpActivities
from plantbridge.activities.mes import MesActivities
from plantbridge.activities.notify import NotifyActivities
from plantbridge.activities.qms import QmsActivities
from plantbridge.activities.wms import WmsActivities
from plantbridge.connectors.ports import ConnectorRegistry
from plantbridge.store.audit import AuditTrail
from plantbridge.store.ledger import Ledger


def all_activities(registry: ConnectorRegistry, ledger: Ledger, audit: AuditTrail) -> list[object]:
    """Every activity of the order saga, bound to a plant connector registry and the store."""
    found: list[object] = []
    for cls in (ErpActivities, MesActivities, QmsActivities, WmsActivities, NotifyActivities):
        found.extend(cls(registry, ledger).all())
    found.extend(AuditActivities(audit).all())
    return found
