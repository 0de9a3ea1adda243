"""API_MATERIAL_DOCUMENT_SRV: post goods movements (``POST A_MaterialDocumentHeader`` with the items
as deep insert in ``to_MaterialDocumentItem``) and read them back, e.g. by
``$filter=MaterialDocumentHeaderText eq '...'`` or ``ReferenceDocument eq '...'`` to find an
earlier posting by its external key. See ``postings.py`` for movement types and checks."""

from __future__ import annotations

from typing import Any

from plantbridge_devtools.simulators.sap import messages, postings
from plantbridge_devtools.simulators.sap.odata import Entity, nav_items, parse_payload
from plantbridge_devtools.simulators.sap.runtime import Context, Runtime
from plantbridge_devtools.simulators.sap.schemas import material_document as schema
from plantbridge_devtools.simulators.sap.services.base import Created, ServiceHandler
from plantbridge_devtools.simulators.sap.state import MATDOC, MATDOC_ITEM, make_key


class MaterialDocumentService(ServiceHandler):
    schema = schema.SCHEMA
    kinds = {"A_MaterialDocumentHeader": MATDOC, "A_MaterialDocumentItem": MATDOC_ITEM}

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.navigators = {
            ("A_MaterialDocumentHeader", "to_MaterialDocumentItem"): self._items_of,
            ("A_MaterialDocumentItem", "to_MaterialDocumentHeader"): self._header_of,
        }

    def _items_of(self, header: Entity) -> list[Entity]:
        parent = make_key(header["MaterialDocumentYear"], header["MaterialDocument"])
        return [self.complete("A_MaterialDocumentItem", i) for i in self.rt.store.children(MATDOC_ITEM, parent)]

    def _header_of(self, item: Entity) -> Entity | None:
        return self.lookup(
            "A_MaterialDocumentHeader",
            {"MaterialDocumentYear": item["MaterialDocumentYear"], "MaterialDocument": item["MaterialDocument"]},
        )

    def create(self, set_name: str, body: Any, ctx: Context) -> Created:
        if set_name != "A_MaterialDocumentHeader":
            return super().create(set_name, body, ctx)
        header, navs = parse_payload(schema.HEADER, body)
        code = header.get("GoodsMovementCode") or ""
        if code not in postings.GOODS_MOVEMENT_CODES:
            raise messages.invalid_value("GoodsMovementCode", f"'{code}' is not a goods movement code (01-07)")
        if "to_MaterialDocumentItem" not in navs:
            raise messages.movement_invalid("A material document needs at least one item (to_MaterialDocumentItem)")
        items = [
            parse_payload(schema.ITEM, raw, allow_nav=False)[0]
            for raw in nav_items(navs["to_MaterialDocumentItem"], "to_MaterialDocumentItem")
        ]
        posted = postings.post(self.rt, ctx, header, items)
        ctx.info("M7/060", f"Document {posted.header['MaterialDocument']} posted", "success")
        return Created(set_name, self.complete(set_name, posted.header), expand=("to_MaterialDocumentItem",))
