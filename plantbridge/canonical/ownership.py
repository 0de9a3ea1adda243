"""Who may speak for what: the source kinds (`mes`, `qms`, `wms`, `edge`) that may send each plant
event type. A key is bound to one kind; an event type outside its kind's rights is refused (403).

The defaults follow who owns the fact on a shop floor: quality results and dispositions belong to
the QMS (lifting a hold is a usage decision); a hold may also be raised at the line by the MES;
counts, confirmations and downtime come from the machines (edge) or the MES; consumption from the MES
or the WMS; maintenance requests from the MES or a machine. A plant file overrides any of them
(`event_sources:` in the plant file, per event type).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from plantbridge.canonical.events import EventType

SourceKind = Literal["mes", "qms", "wms", "edge"]
SOURCE_KINDS: tuple[SourceKind, ...] = ("mes", "qms", "wms", "edge")

DEFAULT_EVENT_SOURCES: Mapping[EventType, tuple[SourceKind, ...]] = {
    EventType.OPERATION_STARTED: ("edge", "mes"),
    EventType.OPERATION_CONFIRMED: ("edge", "mes"),
    EventType.DOWNTIME_STARTED: ("edge", "mes"),
    EventType.DOWNTIME_ENDED: ("edge", "mes"),
    EventType.MATERIAL_CONSUMED: ("mes", "wms"),
    EventType.QUALITY_RESULT: ("qms",),
    EventType.QUALITY_HOLD: ("qms", "mes"),
    EventType.QUALITY_DISPOSITION: ("qms",),
    EventType.MAINTENANCE_REQUESTED: ("mes", "edge"),
}


def event_sources(overrides: Mapping[EventType, tuple[SourceKind, ...] | list[SourceKind]] | None = None,
                  ) -> dict[EventType, tuple[SourceKind, ...]]:
    """The rule table of a plant: the defaults with the plant file's overrides."""
    rules = dict(DEFAULT_EVENT_SOURCES)
    for event_type, kinds in (overrides or {}).items():
        rules[event_type] = tuple(kinds)
    return rules
