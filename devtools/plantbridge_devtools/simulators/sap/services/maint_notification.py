"""API_MAINTNOTIFICATION: create maintenance notifications (e.g. for machine breakdowns), read
them, e.g. by ``$filter=MaintNotifExtReferenceNumber eq '...'``, and update them (PATCH/MERGE),
e.g. to record the end of a malfunction."""

from __future__ import annotations

from typing import Any

from plantbridge_devtools.simulators.sap import messages
from plantbridge_devtools.simulators.sap.odata import Entity, parse_payload, timestamp_str
from plantbridge_devtools.simulators.sap.runtime import Context
from plantbridge_devtools.simulators.sap.schemas import maint_notification as schema
from plantbridge_devtools.simulators.sap.services.base import Created, ServiceHandler
from plantbridge_devtools.simulators.sap.state import NOTIFICATION, make_key

PRIORITY_TEXT = {"1": "Very high", "2": "High", "3": "Medium", "4": "Low"}


def _combined(day: str | None, clock: str | None) -> str | None:
    return f"{day}T{clock or '00:00:00'}Z" if day else None


def _derive(notification: Entity, ctx: Context) -> None:
    notification["MaintPriorityDesc"] = PRIORITY_TEXT.get(notification.get("MaintPriority") or "", "")
    notification["MalfunctionStartDateTime"] = _combined(
        notification.get("MalfunctionStartDate"), notification.get("MalfunctionStartTime")
    )
    notification["MalfunctionEndDateTime"] = _combined(
        notification.get("MalfunctionEndDate"), notification.get("MalfunctionEndTime")
    )
    notification["LastChangeDate"] = ctx.today.isoformat()
    notification["LastChangeTime"] = ctx.now.time().isoformat()
    notification["LastChangeDateTime"] = timestamp_str(ctx.now)


class MaintenanceNotificationService(ServiceHandler):
    schema = schema.SCHEMA
    kinds = {"MaintenanceNotification": NOTIFICATION}

    def create(self, set_name: str, body: Any, ctx: Context) -> Created:
        if set_name != "MaintenanceNotification":
            return super().create(set_name, body, ctx)
        values, _ = parse_payload(schema.NOTIFICATION, body, allow_nav=False)
        if not values.get("NotificationText"):
            raise messages.invalid_value("NotificationText", "enter a description (NotificationText)")
        if not values.get("NotificationType"):
            raise messages.invalid_value("NotificationType", "enter a notification type (e.g. M1, M2)")
        store = self.rt.store
        with store.transaction():
            number = str(store.next_number("notification", 10000000))
            plant = values.get("MaintenancePlanningPlant") or values.get("MainWorkCenterPlant") or ""
            notification: Entity = {
                **values,
                "MaintenanceNotification": number,
                "MaintNotifInternalID": f"QM{int(number):012d}",
                "NotifProcessingPhase": "1",
                "NotifProcessingPhaseDesc": "Outstanding",
                "ConcatenatedActiveSystStsName": "OSNO",
                "CreationDate": ctx.today.isoformat(),
                "CreationTime": ctx.now.time().isoformat(),
                "CreationDateTime": timestamp_str(ctx.now),
                "CreatedByUser": ctx.user,
                "ReportedByUser": values.get("ReportedByUser") or ctx.user,
                "NotificationCreationDate": values.get("NotificationCreationDate") or ctx.today.isoformat(),
                "NotificationCreationTime": values.get("NotificationCreationTime") or ctx.now.time().isoformat(),
                "MaintenancePlanningPlant": plant,
                "MaintenancePlant": values.get("MaintenancePlant") or plant,
            }
            notification["NotificationCreationDateTime"] = _combined(
                notification["NotificationCreationDate"], notification["NotificationCreationTime"]
            )
            _derive(notification, ctx)
            store.put(NOTIFICATION, make_key(number), notification)
        ctx.info("IM/405", f"Notification {number} saved", "success")
        return Created(set_name, self.complete(set_name, notification))

    def update(self, set_name: str, key: dict[str, str], body: Any, ctx: Context, if_match: str | None) -> None:
        if set_name != "MaintenanceNotification":
            super().update(set_name, key, body, ctx, if_match)
            return
        values, _ = parse_payload(schema.NOTIFICATION, body, allow_nav=False)
        store = self.rt.store
        with store.transaction():
            current = store.get(NOTIFICATION, make_key(key["MaintenanceNotification"]))
            if current is None:
                raise messages.not_found(schema.NOTIFICATION.name)
            if values.get("MaintenanceNotification") not in (None, current["MaintenanceNotification"]):
                raise messages.invalid_value("MaintenanceNotification", "the key cannot be changed")
            readonly = {"MaintNotifInternalID", "CreationDate", "CreationTime", "CreationDateTime", "CreatedByUser"}
            current.update({k: v for k, v in values.items() if k not in readonly})
            _derive(current, ctx)
            store.put(NOTIFICATION, make_key(current["MaintenanceNotification"]), current)
