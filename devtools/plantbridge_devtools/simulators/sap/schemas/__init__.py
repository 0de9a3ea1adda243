"""EDM descriptions of the five S/4HANA OData services the simulator serves, by service name."""

from __future__ import annotations

from plantbridge_devtools.simulators.sap.edm import Schema
from plantbridge_devtools.simulators.sap.schemas import (
    confirmation,
    inspection_lot,
    maint_notification,
    material_document,
    production_order,
)

SCHEMAS: dict[str, Schema] = {
    s.service: s
    for s in (
        production_order.SCHEMA,
        confirmation.SCHEMA,
        material_document.SCHEMA,
        inspection_lot.SCHEMA,
        maint_notification.SCHEMA,
    )
}
