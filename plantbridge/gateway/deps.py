"""What the gateway is built from: Temporal client, store, per-plant policy, ERP order source."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio.client import Client

from plantbridge.canonical.events import EventType
from plantbridge.canonical.ownership import SourceKind, event_sources
from plantbridge.canonical.policy import PlantPolicy
from plantbridge.connectors.ports import OrderSource
from plantbridge.gateway.ratelimit import LOOKUP_RATE, Rate
from plantbridge.store.db import Database

if TYPE_CHECKING:
    from plantbridge.gateway.uns import OrderStates

DEFAULT_BODY_LIMIT = 1024 * 1024
# LOIPRO IDocs are larger by nature (~1.2 KB per E1RESBL component segment): an order of 3,000
# components is ~3.5 MB of XML (issue 17, tests/e2e/test_large_order.py).
DEFAULT_IDOC_BODY_LIMIT = 8 * 1024 * 1024


def default_telemetry_root(plant: str) -> Path:
    """`<state dir>/exports/<plant>/telemetry` (the dev stack's export target)."""
    from plantbridge.workers.settings import state_dir

    return state_dir() / "exports" / plant / "telemetry"


def default_policy(_plant: str) -> PlantPolicy:
    return PlantPolicy()


def instance_id() -> str:
    """This gateway process among several on one store: host, pid and a random part (the inbox lease owner)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def no_translation(event: dict[str, Any]) -> dict[str, Any]:
    return event


def default_event_rules(_plant: str) -> dict[EventType, tuple[SourceKind, ...]]:
    return event_sources()


@dataclass
class GatewayDeps:
    client: Client
    db: Database
    policy_for: Callable[[str], PlantPolicy] = default_policy
    order_source: OrderSource | None = None
    ack_wait: timedelta = timedelta(seconds=2)
    body_limit: int = DEFAULT_BODY_LIMIT
    idoc_body_limit: int = DEFAULT_IDOC_BODY_LIMIT
    # IDoc plant codes that are not canonical (e.g. five characters) mapped to the canonical plant.
    idoc_plant_map: dict[str, str] = field(default_factory=dict)
    # Re-drive messages left `received` by a previous process when the app starts.
    redrive_on_startup: bool = True
    # How often the re-driver looks for deferred messages (Temporal refused them as "not now").
    redrive_every: timedelta = timedelta(seconds=1)
    # The plant's cross-references: local codes (work centers, reasons, units) -> the ERP's, applied
    # to a plant event before it is validated (see `PlantConfig.translate_event`).
    translate: Callable[[dict[str, Any]], dict[str, Any]] = no_translation
    # The Unified Namespace out: order state changes published to MQTT (None: off).
    uns: OrderStates | None = None
    # Per plant: the ERP order source of plants whose releases come by webhook (Odoo), and the
    # webhook token in their URL (`/v1/erp/odoo/events/{plant}/{token}`).
    order_sources: dict[str, OrderSource] = field(default_factory=dict)
    odoo_tokens: dict[str, str] = field(default_factory=dict)
    # Per plant: which source kinds may send which event types (the plant file's `event_sources`).
    event_rules: Callable[[str], dict[EventType, tuple[SourceKind, ...]]] = default_event_rules
    # Several gateways on one store: this process's id, and how long it holds an inbox row it drives
    # (stamped on receipt, cleared when finished); a re-driver only claims rows whose lease ran out.
    instance: str = field(default_factory=instance_id)
    # A plant event stamped further than this in the future is refused (422): a plant clock gone wrong
    # would otherwise date postings.
    max_clock_skew: timedelta = timedelta(minutes=5)
    # Token buckets per API key, by role (None: `ratelimit.DEFAULT_RATES`), and for look-ups of unknown keys.
    rate_limits: dict[str, Rate] | None = None
    lookup_rate: Rate = LOOKUP_RATE
    # A LOIPRO IDoc with more orders than this is refused (413): one message, bounded work.
    max_orders_per_idoc: int = 200
    inbox_lease: timedelta = timedelta(seconds=60)
    # Where a plant's telemetry archive (Parquet, `POST /v1/plant/telemetry`) lives: the plant's
    # export directory + `telemetry/` (see gateway/server.py), by default under the state dir.
    telemetry_root: Callable[[str], Path] = default_telemetry_root
