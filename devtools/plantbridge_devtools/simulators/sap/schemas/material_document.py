"""EDM description of the API_MATERIAL_DOCUMENT_SRV subset served by the simulator.

Names, Edm types, lengths and nullability follow SAP's published ``$metadata`` for API_MATERIAL_DOCUMENT_SRV;
the simulator serves these properties only (see ``tests/simulators/test_sap_metadata_conformance.py``).
"""

from __future__ import annotations

from plantbridge_devtools.simulators.sap.edm import (
    EntitySet,
    EntityType,
    Navigation,
    Schema,
    boolean,
    date,
    decimal,
    string,
    time,
)

SERVICE = "API_MATERIAL_DOCUMENT_SRV"

HEADER = EntityType(
    "A_MaterialDocumentHeaderType",
    keys=("MaterialDocumentYear", "MaterialDocument"),
    properties=(
        string("MaterialDocumentYear", 4, nullable=False),
        string("MaterialDocument", 10, nullable=False),
        string("InventoryTransactionType", 2),
        date("DocumentDate"),
        date("PostingDate"),
        date("CreationDate"),
        time("CreationTime"),
        string("CreatedByUser", 12),
        string("MaterialDocumentHeaderText", 25),
        string("ReferenceDocument", 16),
        string("VersionForPrintingSlip", 1),
        string("ManualPrintIsTriggered", 1),
        string("CtrlPostgForExtWhseMgmtSyst", 1),
        string("GoodsMovementCode", 2),
    ),
    navigations=(Navigation("to_MaterialDocumentItem", "A_MaterialDocumentItemType", to_many=True),),
)

ITEM = EntityType(
    "A_MaterialDocumentItemType",
    keys=("MaterialDocumentYear", "MaterialDocument", "MaterialDocumentItem"),
    properties=(
        string("MaterialDocumentYear", 4, nullable=False),
        string("MaterialDocument", 10, nullable=False),
        string("MaterialDocumentItem", 4, nullable=False),
        string("Material", 40),
        string("Plant", 4),
        string("StorageLocation", 4),
        string("Batch", 10),
        string("GoodsMovementType", 3),
        string("InventoryStockType", 2),
        string("InventorySpecialStockType", 1),
        string("Supplier", 10),
        string("Customer", 10),
        string("SalesOrder", 10),
        string("SalesOrderItem", 6),
        string("PurchaseOrder", 10),
        string("PurchaseOrderItem", 5),
        string("ManufacturingOrder", 12),
        string("ManufacturingOrderItem", 4),
        string("GoodsMovementRefDocType", 1),
        string("GoodsMovementReasonCode", 4),
        string("CostCenter", 10),
        string("GLAccount", 10),
        string("MaterialBaseUnit", 3),
        decimal("QuantityInBaseUnit", 13, 3),
        string("EntryUnit", 3),
        decimal("QuantityInEntryUnit", 13, 3),
        string("FiscalYear", 4),
        string("FiscalYearPeriod", 7),
        boolean("IsCompletelyDelivered"),
        string("MaterialDocumentItemText", 50),
        date("ShelfLifeExpirationDate"),
        date("ManufactureDate"),
        string("Reservation", 10),
        string("ReservationItem", 4),
        boolean("ReservationIsFinallyIssued"),
        boolean("GoodsMovementIsCancelled"),
        string("ReversedMaterialDocumentYear", 4),
        string("ReversedMaterialDocument", 10),
        string("ReversedMaterialDocumentItem", 4),
        string("EWMWarehouse", 4),
        string("EWMStorageBin", 18),
        string("DebitCreditCode", 1),
    ),
    navigations=(Navigation("to_MaterialDocumentHeader", "A_MaterialDocumentHeaderType", to_many=False),),
)

SCHEMA = Schema(
    service=SERVICE,
    namespace=SERVICE,
    entity_types=(HEADER, ITEM),
    entity_sets=(
        EntitySet("A_MaterialDocumentHeader", "A_MaterialDocumentHeaderType", creatable=True),
        EntitySet("A_MaterialDocumentItem", "A_MaterialDocumentItemType"),
    ),
)
