"""EDM description of the API_INSPECTIONLOT_SRV subset served by the simulator.

Names, Edm types, lengths and nullability follow SAP's published ``$metadata`` for API_INSPECTIONLOT_SRV;
the simulator serves these properties only (see ``tests/simulators/test_sap_metadata_conformance.py``).
"""

from __future__ import annotations

from plantbridge_devtools.simulators.sap.edm import (
    EntitySet,
    EntityType,
    Schema,
    boolean,
    date,
    decimal,
    string,
    time,
    timestamp,
)

SERVICE = "API_INSPECTIONLOT_SRV"

INSPECTION_LOT = EntityType(
    "A_InspectionLotType",
    keys=("InspectionLot",),
    properties=(
        string("InspectionLot", 12, nullable=False),
        string("Material", 40),
        string("Batch", 10),
        string("Plant", 4),
        string("InspectionLotOrigin", 2),
        string("OrderInternalBillOfOperations", 10),
        string("ManufacturingOrder", 12),
        string("InspectionLotText", 40),
        string("InspectionLotType", 8),
        decimal("InspectionLotQuantity", 13, 3),
        decimal("InspectionLotActualQuantity", 13, 3),
        decimal("InspectionLotDefectiveQuantity", 13, 3),
        string("InspectionLotQuantityUnit", 3),
        date("InspLotCreatedOnLocalDate"),
        boolean("InspLotIsStockPostingCompleted"),
        boolean("InspectionLotHasUsageDecision"),
        string("InspectionLotCreatedBy", 12),
        date("InspectionLotCreatedOn"),
        time("InspectionLotCreatedOnTime"),
        timestamp("ChangedDateTime", etag=True),
        date("InspectionLotStartDate"),
        date("InspectionLotEndDate"),
        string("MaterialDocumentYear", 4),
        string("MaterialDocument", 10),
        string("MaterialDocumentItem", 4),
        string("GoodsMovementType", 3),
        decimal("InspLotQtyToFree", 13, 3),
        decimal("InspLotQtyToScrap", 13, 3),
        decimal("InspLotQtyToBlocked", 13, 3),
    ),
)

USAGE_DECISION = EntityType(
    "A_InspLotUsageDecisionType",
    keys=("InspectionLot",),
    properties=(
        string("InspectionLot", 12, nullable=False),
        string("InspLotUsageDecisionLevel", 1),
        decimal("InspectionLotQualityScore", 3, 0),
        string("InspLotUsageDecisionCatalog", 1),
        string("SelectedCodeSetPlant", 4),
        string("InspLotUsgeDcsnSelectedSet", 8),
        string("InspLotUsageDecisionCodeGroup", 8),
        string("InspectionLotUsageDecisionCode", 4),
        string("InspLotUsgeDcsnDynValuation", 1),
        string("InspLotUsageDecisionValuation", 1),
        string("InspLotUsgeDcsnFollowUpAction", 8),
        string("InspectionLotUsageDecidedBy", 12),
        date("InspectionLotUsageDecidedOn"),
        time("InspLotUsageDecisionTime"),
        string("InspLotUsageDecisionChangedBy", 12),
        date("InspLotUsageDecisionChangedOn"),
        time("InspLotUsgeDcsnChangedTime"),
        boolean("InspLotUsgeDcsnHasLongText"),
        timestamp("ChangedDateTime", etag=True),
    ),
)

SCHEMA = Schema(
    service=SERVICE,
    namespace=SERVICE,
    entity_types=(INSPECTION_LOT, USAGE_DECISION),
    entity_sets=(
        EntitySet("A_InspectionLot", "A_InspectionLotType"),
        EntitySet("A_InspLotUsageDecision", "A_InspLotUsageDecisionType", creatable=True),
    ),
)
