"""EDM description of the API_MAINTNOTIFICATION subset served by the simulator.

Names, Edm types, lengths and nullability follow SAP's published ``$metadata`` for API_MAINTNOTIFICATION;
the simulator serves these properties only (see ``tests/simulators/test_sap_metadata_conformance.py``).
"""

from __future__ import annotations

from plantbridge_devtools.simulators.sap.edm import (
    EntitySet,
    EntityType,
    Schema,
    boolean,
    date,
    string,
    time,
    timestamp,
)

SERVICE = "API_MAINTNOTIFICATION"

NOTIFICATION = EntityType(
    "MaintenanceNotificationType",
    keys=("MaintenanceNotification",),
    properties=(
        string("MaintenanceNotification", 12, nullable=False),
        string("MaintNotifInternalID", 22),
        string("NotificationText", 40, nullable=False),
        string("MaintPriority", 1),
        string("NotificationType", 2),
        string("NotifProcessingPhase", 1),
        string("NotifProcessingPhaseDesc", 60),
        string("MaintPriorityDesc", 20),
        date("CreationDate"),
        time("LastChangeTime"),
        date("LastChangeDate"),
        timestamp("LastChangeDateTime"),
        time("CreationTime"),
        string("ReportedByUser", 12),
        string("ReporterFullName", 80),
        string("MalfunctionEffect", 1),
        date("MalfunctionStartDate"),
        time("MalfunctionStartTime"),
        date("MalfunctionEndDate"),
        time("MalfunctionEndTime"),
        string("MaintNotificationCode", 4),
        string("MaintNotificationCodeGroup", 8),
        date("NotificationCreationDate"),
        time("NotificationCreationTime"),
        date("RequiredStartDate"),
        date("RequiredEndDate"),
        boolean("MaintenanceObjectIsDown"),
        string("MaintNotificationLongText"),
        string("TechnicalObject", 40),
        string("TechObjIsEquipOrFuncnlLoc", 20),
        string("MaintenancePlanningPlant", 4),
        string("MaintenancePlannerGroup", 3),
        string("PlantSection", 3),
        string("FunctionalLocation", 30),
        string("MainWorkCenterPlant", 4),
        string("MainWorkCenter", 8),
        string("MaintenancePlant", 4),
        string("MaintenanceOrder", 12),
        string("ConcatenatedActiveSystStsName", 224),
        string("MaintNotifExtReferenceNumber", 20),
        timestamp("CreationDateTime"),
        timestamp("MalfunctionStartDateTime"),
        timestamp("MalfunctionEndDateTime"),
        timestamp("NotificationCreationDateTime"),
        string("CreatedByUser", 12),
    ),
)

SCHEMA = Schema(
    service=SERVICE,
    namespace="cds_api_maintnotification",
    entity_types=(NOTIFICATION,),
    entity_sets=(EntitySet("MaintenanceNotification", "MaintenanceNotificationType", creatable=True, updatable=True),),
)
