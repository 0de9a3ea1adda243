"""The SAP RFC connector against a fake ``pyrfc.Connection``.

pyrfc cannot be installed here (it needs SAP's proprietary NW RFC SDK), so ``FakeSap`` stands in
for ``pyrfc.Connection``: it answers with the real BAPI structures (the
BAPI_PRODORDCONF_CREATE_TT answer is built from the field lists and rows of SAP's own RFC response
in ``tests/fixtures/sap_rfc/``), keeps postings in an open LUW until ``BAPI_TRANSACTION_COMMIT``
(``BAPI_TRANSACTION_ROLLBACK`` drops them), records every call, and can be told to answer with
E messages or to raise exceptions named as pyrfc's.
"""

from __future__ import annotations

import functools
import itertools
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from plantbridge.canonical.commands import (
    CompleteOrder,
    ConfirmOperation,
    GoodsMovement,
    GoodsMovementItem,
    GoodsReceipt,
    MaintenanceNotification,
    UsageDecision,
    external_key,
)
from plantbridge.canonical.events import ActivityTimes
from plantbridge.canonical.fields import Quantity
from plantbridge.canonical.order import Component, Operation, ProductionOrder
from plantbridge.connectors.errors import BusinessRejection, TransientError
from plantbridge.connectors.sap_rfc import SapRfcConnector
from plantbridge.connectors.sap_rfc_bapi import goods_movement_header_text
from plantbridge.connectors.sap_rfc_messages import Outcome, classify_exception, messages

FIXTURE = Path(__file__).parent.parent / "fixtures" / "sap_rfc" / "PRODORDCONF_CREATE_TT_RESPONSE.xml"


# -- exceptions named as pyrfc's (matched by class name) ------------------------------------------
class RFCError(Exception):
    def __init__(self, message: str, *, key: str = "", msg_class: str = "", msg_number: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.msg_class = msg_class
        self.msg_number = msg_number


class CommunicationError(RFCError):
    pass


class LogonError(RFCError):
    pass


class ABAPApplicationError(RFCError):
    pass


class ABAPRuntimeError(RFCError):
    pass


class ExternalRuntimeError(RFCError):
    pass


class RFCLibError(RFCError):
    pass


class ExternalAuthorizationError(RFCError):
    pass


# -- the real structures from SAP's response ------------------------------------------------------
def _load_fixture() -> tuple[list[str], list[dict[str, str]], list[str]]:
    root = ET.parse(FIXTURE).getroot()
    es_return = root.find("ES_RETURN")
    detail = root.find("ET_DETAIL_RETURN")
    goods = root.find("IT_GOODSMOVEMENTS/item")
    assert es_return is not None and detail is not None and goods is not None
    bapiret1 = [child.tag for child in es_return]
    coru_rows = [{child.tag: child.text or "" for child in item} for item in detail.findall("item")]
    gm_fields = [child.tag for child in goods]
    return bapiret1, coru_rows, gm_fields


BAPIRET1_FIELDS, CORU_ROWS, GM_ITEM_FIELDS = _load_fixture()
CORU_FIELDS = list(CORU_ROWS[0])
BAPIRET2_FIELDS = [*BAPIRET1_FIELDS, "PARAMETER", "ROW", "FIELD", "SYSTEM"]
# BAPI_PP_TIMETICKET (field names as published for BAPI_PRODORDCONF_CREATE_TT).
TIMETICKET_FIELDS = {
    "CONF_NO", "ORDERID", "SEQUENCE", "OPERATION", "SUB_OPER", "CAPA_CATEGORY", "SPLIT", "FIN_CONF",
    "CLEAR_RES", "POSTG_DATE", "DEV_REASON", "CONF_TEXT", "PLANT", "WORK_CNTR", "RECORDTYPE",
    "CONF_QUAN_UNIT", "CONF_QUAN_UNIT_ISO", "YIELD", "SCRAP", "REWORK",
    *(f"CONF_ACTI_UNIT{i}" for i in range(1, 7)), *(f"CONF_ACTIVITY{i}" for i in range(1, 7)),
    *(f"NO_REMN_ACTI{i}" for i in range(1, 7)), "PERS_NO", "TIMEID_NO", "WAGETYPE", "BREAK_TIME",
    "EX_CREATED_BY", "EX_CREATED_DATE", "EX_CREATED_TIME", "EX_IDENT", "LOGDATE", "LOGTIME",
}  # fmt: skip


def _row(fields: list[str], **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(fields, "")
    row.update(values)
    return row


def ret2(mtype: str, msg_id: str, number: str, text: str, **extra: Any) -> dict[str, Any]:
    return _row(BAPIRET2_FIELDS, TYPE=mtype, ID=msg_id, NUMBER=number, MESSAGE=text, **extra)


Action = Exception | list[dict[str, Any]]


class FakeSap:
    """Stands in for ``pyrfc.Connection`` (SAP's SDK cannot be installed here)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.scripts: dict[str, list[Action]] = {}
        self.pending: list[Callable[[], None]] = []
        self.afru: list[dict[str, str]] = []
        self.mkpf: list[dict[str, str]] = []
        self.status: dict[str, set[str]] = {}
        self.lots: dict[str, dict[str, Any]] = {}
        self.notifs: dict[str, dict[str, Any]] = {}
        self._numbers = itertools.count(1)
        self._temp_notif: dict[str, Any] | None = None
        self.closed = False

    # -- test controls --
    def script(self, func: str, *actions: Action) -> None:
        """The next calls of ``func`` raise the exception / answer with these error messages."""
        self.scripts.setdefault(func, []).extend(actions)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def params(self, func: str) -> list[dict[str, Any]]:
        return [p for name, p in self.calls if name == func]

    def close(self) -> None:
        self.closed = True

    # -- pyrfc's API --
    def call(self, func_name: str, /, **params: Any) -> dict[str, Any]:
        self.calls.append((func_name, params))
        scripted: Action | None = self.scripts[func_name].pop(0) if self.scripts.get(func_name) else None
        if isinstance(scripted, Exception):
            raise scripted
        handler = getattr(self, f"_{func_name.lower()}", None)
        if handler is None:
            raise ABAPApplicationError(f"function {func_name} not found", key="FU_NOT_FOUND")
        result: dict[str, Any] = handler(params, scripted)
        return result

    def _next(self, width: int) -> str:
        return str(next(self._numbers)).zfill(width)

    # transactions
    def _bapi_transaction_commit(self, params: dict[str, Any], errors: Any) -> dict[str, Any]:
        assert params == {"WAIT": "X"}
        for apply in self.pending:
            apply()
        self.pending.clear()
        return {"RETURN": _row(BAPIRET2_FIELDS)}

    def _bapi_transaction_rollback(self, params: dict[str, Any], errors: Any) -> dict[str, Any]:
        self.pending.clear()
        return {"RETURN": _row(BAPIRET2_FIELDS)}

    # confirmations
    def _bapi_prodordconf_create_tt(self, params: dict[str, Any], errors: Any) -> dict[str, Any]:
        for ticket in params["TIMETICKETS"]:
            assert set(ticket) <= TIMETICKET_FIELDS, set(ticket) - TIMETICKET_FIELDS
        for item in params.get("GOODSMOVEMENTS", []):
            assert set(item) <= set(GM_ITEM_FIELDS), set(item) - set(GM_ITEM_FIELDS)
        if errors:
            rows = [_row(CORU_FIELDS, **e) for e in errors]
            first = {k: v for k, v in rows[0].items() if k in BAPIRET1_FIELDS}
            return {"RETURN": first, "DETAIL_RETURN": rows, "TIMETICKETS": params["TIMETICKETS"]}
        detail = []
        for row, ticket in enumerate(params["TIMETICKETS"], start=1):
            conf_no, conf_cnt = self._next(10), "00000001"
            saved = dict(CORU_ROWS[0])  # SAP's own "I RU/100 Confirmation of order ... saved" row
            saved.update(
                MESSAGE=f"Confirmation of order {ticket['ORDERID']} saved",
                MESSAGE_V1=ticket["ORDERID"],
                ROW=str(row),
                CONF_NO=conf_no,
                CONF_CNT=conf_cnt,
            )
            detail.append(saved)
            record = {
                "RUECK": conf_no,
                "RMZHL": conf_cnt,
                "AUFNR": ticket["ORDERID"],
                "EXTID": ticket.get("EX_IDENT", ""),
            }
            self.pending.append(functools.partial(self.afru.append, {**record, "STOKZ": ""}))
        return {"RETURN": _row(BAPIRET1_FIELDS, NUMBER="000"), "DETAIL_RETURN": detail}

    def _rfc_read_table(self, params: dict[str, Any], errors: Any) -> dict[str, Any]:
        table = {"AFRU": self.afru, "MKPF": self.mkpf}[params["QUERY_TABLE"]]
        where = " ".join(o["TEXT"] for o in params["OPTIONS"])
        conds = dict(re.findall(r"(\w+) = '([^']*)'", where))
        fields = [f["FIELDNAME"] for f in params["FIELDS"]]
        hits = [r for r in table if all(r.get(k, "") == v for k, v in conds.items())]
        delim = params["DELIMITER"]
        return {
            "FIELDS": [{"FIELDNAME": f, "OFFSET": "0", "LENGTH": "0", "TYPE": "C", "FIELDTEXT": ""} for f in fields],
            "DATA": [{"WA": delim.join(r.get(f, "") for f in fields)} for r in hits],
        }

    # goods movements
    def _bapi_goodsmvt_create(self, params: dict[str, Any], errors: Any) -> dict[str, Any]:
        for item in params["GOODSMVT_ITEM"]:
            assert set(item) <= set(GM_ITEM_FIELDS), set(item) - set(GM_ITEM_FIELDS)
        header = params["GOODSMVT_HEADER"]
        assert len(header["HEADER_TXT"]) <= 25 and len(header["REF_DOC_NO"]) <= 16
        if errors:
            return {"RETURN": [ret2(**e) if "mtype" in e else _row(BAPIRET2_FIELDS, **e) for e in errors],
                    "MATERIALDOCUMENT": "", "MATDOCUMENTYEAR": "0000"}  # fmt: skip
        number, year = f"49{self._next(8)}", str(date.today().year)
        record = {"MBLNR": number, "MJAHR": year, "BKTXT": header["HEADER_TXT"], "XBLNR": header["REF_DOC_NO"]}
        self.pending.append(lambda: self.mkpf.append(record))
        return {
            "GOODSMVT_HEADRET": {"MAT_DOC": number, "DOC_YEAR": year},
            "MATERIALDOCUMENT": number,
            "MATDOCUMENTYEAR": year,
            "RETURN": [],
        }

    # orders
    def _orders(self, params: dict[str, Any], errors: Any, status: str) -> dict[str, Any]:
        if errors:
            return {"RETURN": _row(BAPIRET2_FIELDS, **errors[0]), "DETAIL_RETURN": errors}
        numbers = [o["ORDER_NUMBER"] for o in params["ORDERS"]]
        for n in numbers:
            self.pending.append(functools.partial(self._set_status, n, status))
        return {"RETURN": _row(BAPIRET2_FIELDS), "DETAIL_RETURN": []}

    def _set_status(self, number: str, status: str) -> None:
        self.status.setdefault(number, set()).add(status)

    def _bapi_prodord_release(self, params: dict[str, Any], errors: Any) -> dict[str, Any]:
        return self._orders(params, errors, "REL")

    def _bapi_prodord_complete_tech(self, params: dict[str, Any], errors: Any) -> dict[str, Any]:
        return self._orders(params, errors, "TECO")

    def _bapi_prodord_get_detail(self, params: dict[str, Any], errors: Any) -> dict[str, Any]:
        status = " ".join(sorted(self.status.get(params["NUMBER"], set())))
        return {
            "HEADER": [{"ORDER_NUMBER": params["NUMBER"], "SYSTEM_STATUS": status}],
            "RETURN": _row(BAPIRET2_FIELDS),
        }

    # quality
    def _bapi_insplot_getlist(self, params: dict[str, Any], errors: Any) -> dict[str, Any]:
        want_ud = params.get("STATUS_UD", "X") == "X"
        want_open = params.get("STATUS_RELEASED", "X") == "X" or params.get("STATUS_CREATED", "X") == "X"
        rows = [
            {"INSPLOT": lot, "ORDER_NO": data["order"], "PLANT": data["plant"]}
            for lot, data in self.lots.items()
            if data["order"] == params["ORDER"] and ((data["ud"] and want_ud) or (not data["ud"] and want_open))
        ]
        return {"INSPLOT_LIST": rows, "RETURN": _row(BAPIRET1_FIELDS)}

    def _bapi_insplot_setusagedecision(self, params: dict[str, Any], errors: Any) -> dict[str, Any]:
        if errors:
            return {"RETURN": _row(BAPIRET1_FIELDS, **errors[0])}
        lot = params["NUMBER"]
        assert params["UD_DATA"]["INSPLOT"] == lot
        self.pending.append(lambda: self.lots[lot].update(ud=params["UD_DATA"]["UD_CODE"]))
        return {"RETURN": _row(BAPIRET1_FIELDS), "UD_RETURN_DATA": {"FOLLOW_UP_ACTION": ""}}

    # maintenance
    def _bapi_alm_notif_create(self, params: dict[str, Any], errors: Any) -> dict[str, Any]:
        if errors:
            return {"RETURN": [ret2(**e) for e in errors], "NOTIFHEADER_EXPORT": {"NOTIF_NO": ""}}
        self._temp_notif = {"header": params["NOTIFHEADER"], "text": params.get("LONGTEXTS", [])}
        return {"RETURN": [], "NOTIFHEADER_EXPORT": {"NOTIF_NO": "%00000000001", "ORDERID": ""}}

    def _bapi_alm_notif_save(self, params: dict[str, Any], errors: Any) -> dict[str, Any]:
        assert params["NUMBER"] == "%00000000001" and self._temp_notif is not None
        number, notif = f"1{self._next(8)}", self._temp_notif
        self.pending.append(lambda: self.notifs.__setitem__(number, notif))
        return {"RETURN": [], "NOTIFHEADER": {"NOTIF_NO": number, "ORDERID": ""}}

    def _bapi_alm_notif_list_equi(self, params: dict[str, Any], errors: Any) -> dict[str, Any]:
        rows = [{"NOTIF_NO": n} for n, d in self.notifs.items() if d["header"]["EQUIPMENT"] == params["EQUIPMENT"]]
        return {"NOTIFICATION": rows, "RETURN": {"TYPE": "", "CODE": "", "MESSAGE": ""}}

    def _bapi_alm_notif_get_detail(self, params: dict[str, Any], errors: Any) -> dict[str, Any]:
        return {"NOTLONGTXT": self.notifs[params["NUMBER"]]["text"], "RETURN": []}


# -- fixtures -------------------------------------------------------------------------------------
def make_order(number: str = "1004157") -> ProductionOrder:
    return ProductionOrder(
        number=number,
        plant="1000",
        material="FG-100",
        quantity=Quantity(quantity=Decimal(40), uom="H87"),
        storage_location="0001",
        operations=[
            Operation(number="0010", work_center="WC-10", planned_qty=Quantity(quantity=Decimal(40), uom="H87")),
            Operation(number="0020", work_center="WC-20", planned_qty=Quantity(quantity=Decimal(40), uom="H87")),
        ],
        components=[
            Component(material="RM-1", quantity=Quantity(quantity=Decimal(80), uom="KGM"), operation="0010"),
        ],
    )


def key(name: str) -> str:
    return external_key(f"production-order:1000:1004157:{name}")


@pytest.fixture
def sap() -> FakeSap:
    return FakeSap()


@pytest.fixture
def erp(sap: FakeSap) -> SapRfcConnector:
    return SapRfcConnector(sap)


def confirm(final: bool = False, op: str = "0010") -> ConfirmOperation:
    return ConfirmOperation(
        operation=op,
        work_center="WC-10",
        yield_qty=Quantity(quantity=Decimal(40), uom="H87"),
        scrap_qty=Quantity(quantity=Decimal(2), uom="H87"),
        final=final,
        activities=ActivityTimes(setup_min=Decimal(15), machine_min=Decimal(120)),
        goods_movements=[
            GoodsMovementItem(
                material="RM-1", quantity=Quantity(quantity=Decimal("80.5"), uom="KGM"), movement_type="261"
            )
        ],
    )


POSTING_BAPIS = {
    "BAPI_PRODORD_RELEASE",
    "BAPI_PRODORDCONF_CREATE_TT",
    "BAPI_GOODSMVT_CREATE",
    "BAPI_PRODORD_COMPLETE_TECH",
    "BAPI_INSPLOT_SETUSAGEDECISION",
    "BAPI_ALM_NOTIF_SAVE",
}


# -- tests ----------------------------------------------------------------------------------------
async def test_whole_order_is_posted_with_one_commit_per_posting(sap: FakeSap, erp: SapRfcConnector) -> None:
    order = make_order()
    sap.lots["010000000123"] = {"order": "000001004157", "plant": "1000", "ud": None}

    released = await erp.release_order(order.number)
    c1 = await erp.confirm_operation(order, confirm(), key=key("c1"), retry=False)
    c2 = await erp.confirm_operation(order, confirm(final=True, op="0020"), key=key("c2"), retry=False)
    gi = await erp.goods_movement(
        order,
        GoodsMovement(items=[GoodsMovementItem(material="RM-1", quantity=Quantity(quantity=Decimal(3), uom="KGM"),
                                               movement_type="261", storage_location="0001", batch="B1")]),
        key=key("gi"),
        retry=False,
    )  # fmt: skip
    gr = await erp.goods_receipt(order, GoodsReceipt(quantity=Quantity(quantity=Decimal(38), uom="H87")),
                                 key=key("gr"), retry=False)  # fmt: skip
    teco = await erp.complete_order(order, CompleteOrder(), key=key("teco"), retry=False)
    ud = await erp.usage_decision(order, UsageDecision(decision="release"), key=key("ud"), retry=False)
    notif = await erp.maintenance_notification(
        order,
        MaintenanceNotification(equipment="10000042", priority=2, description="Spindle vibration above limit"),
        key=key("notif"),
        retry=False,
    )

    assert released.documents == ["REL 1004157"]
    assert re.fullmatch(r"CONF \d{10}/00000001", c1.documents[0]) and len(c1.documents) == 1
    assert c1.message and "RU/100" in c1.message  # SAP's own success line, kept as info
    assert c2.documents != c1.documents
    assert re.fullmatch(r"MATDOC 49\d{8}/\d{4}", gi.documents[0])
    assert re.fullmatch(r"MATDOC 49\d{8}/\d{4}", gr.documents[0])
    assert teco.documents == ["TECO 1004157"] and ud.documents == ["UD 010000000123"]
    assert re.fullmatch(r"NOTIF 1\d{8}", notif.documents[0])
    assert not any(r.replayed for r in (c1, c2, gi, gr, teco, ud, notif))

    # The confirmations carry the key in EX_IDENT, as is; the order padded; units SAP's own.
    tickets = [p["TIMETICKETS"][0] for p in sap.params("BAPI_PRODORDCONF_CREATE_TT")]
    assert [t["EX_IDENT"] for t in tickets] == [key("c1"), key("c2")]
    assert tickets[0]["ORDERID"] == "000001004157" and tickets[0]["CONF_QUAN_UNIT"] == "ST"
    assert tickets[0]["YIELD"] == "40" and tickets[0]["SCRAP"] == "2" and tickets[1]["FIN_CONF"] == "X"
    assert tickets[0]["CONF_ACTIVITY1"] == "15" and tickets[0]["CONF_ACTIVITY2"] == "120"
    first = sap.params("BAPI_PRODORDCONF_CREATE_TT")[0]
    assert first["GOODSMOVEMENTS"][0]["ENTRY_QNT"] == "80.5" and first["GOODSMOVEMENTS"][0]["ENTRY_UOM"] == "KG"
    assert first["LINK_CONF_GOODSMOV"] == [{"INDEX_CONFIRM": 1, "INDEX_GOODSMOV": 1}]

    gm = sap.params("BAPI_GOODSMVT_CREATE")
    assert [p["GOODSMVT_CODE"]["GM_CODE"] for p in gm] == ["03", "02"]
    assert gm[0]["GOODSMVT_HEADER"]["HEADER_TXT"] == key("gi")[:24] + "0"
    assert gm[0]["GOODSMVT_HEADER"]["REF_DOC_NO"] == "000001004157"
    assert (
        gm[1]["GOODSMVT_ITEM"][0] | {"MATERIAL": "FG-100", "MOVE_TYPE": "101", "MVT_IND": "F"}
        == gm[1]["GOODSMVT_ITEM"][0]
    )
    notif_text = sap.params("BAPI_ALM_NOTIF_CREATE")[0]["LONGTEXTS"][0]["TEXT_LINE"]
    assert notif_text == f"plantbridge key {key('notif')}"

    # Exactly one commit per posting, right after it; never a rollback.
    names = sap.names()
    assert names.count("BAPI_TRANSACTION_COMMIT") == 8 and "BAPI_TRANSACTION_ROLLBACK" not in names
    for i, name in enumerate(names):
        if name == "BAPI_TRANSACTION_COMMIT":
            assert names[i - 1] in POSTING_BAPIS
    assert sum(n in POSTING_BAPIS for n in names) == 8
    assert len(sap.afru) == 2 and len(sap.mkpf) == 2 and sap.status["000001004157"] == {"REL", "TECO"}
    assert sap.lots["010000000123"]["ud"] == "A" and len(sap.notifs) == 1


async def test_bapiret2_error_is_a_business_rejection_and_rolled_back(sap: FakeSap, erp: SapRfcConnector) -> None:
    deficit = "Deficit of SL Unrestricted-use 3 KG : RM-1 1000 0001"
    sap.script(
        "BAPI_GOODSMVT_CREATE",
        [
            {"mtype": "E", "msg_id": "M7", "number": "021", "text": deficit},
            {"mtype": "E", "msg_id": "M7", "number": "022", "text": "Follow-on error"},
            {"mtype": "W", "msg_id": "M7", "number": "121", "text": "Just a warning"},
        ],
    )
    cmd = GoodsMovement(
        items=[
            GoodsMovementItem(material="RM-1", quantity=Quantity(quantity=Decimal(3), uom="KGM"), movement_type="261")
        ]
    )
    with pytest.raises(BusinessRejection) as info:
        await erp.goods_movement(make_order(), cmd, key=key("gi"), retry=False)
    err = info.value
    assert err.code == "M7/021" and err.system == "erp"
    assert err.message == "Deficit of SL Unrestricted-use 3 KG : RM-1 1000 0001"
    assert len(err.details) == 2 and "M7/022" in err.details[1]
    assert sap.names() == ["BAPI_GOODSMVT_CREATE", "BAPI_TRANSACTION_ROLLBACK"]
    assert sap.mkpf == []


async def test_confirmation_error_from_detail_return(sap: FakeSap, erp: SapRfcConnector) -> None:
    sap.script(
        "BAPI_PRODORDCONF_CREATE_TT", [{"TYPE": "E", "ID": "RU", "NUMBER": "170", "MESSAGE": "Order is not released"}]
    )
    with pytest.raises(BusinessRejection) as info:
        await erp.confirm_operation(make_order(), confirm(), key=key("c1"), retry=False)
    assert info.value.code == "RU/170" and info.value.message == "Order is not released"
    assert "BAPI_TRANSACTION_COMMIT" not in sap.names() and sap.names()[-1] == "BAPI_TRANSACTION_ROLLBACK"


@pytest.mark.parametrize(
    "row",
    [
        {"TYPE": "E", "ID": "RU", "NUMBER": "505", "MESSAGE": "Order 1004157 is blocked", "FLG_LOCKED": "X"},
        {"TYPE": "E", "ID": "CO", "NUMBER": "469", "MESSAGE": "Order 1004157 is currently being processed by MILLER"},
        {"TYPE": "E", "ID": "MC", "NUMBER": "601", "MESSAGE": "Object requested is currently locked by user MILLER"},
    ],
)
async def test_lock_message_is_transient_after_rollback(
    sap: FakeSap, erp: SapRfcConnector, row: dict[str, str]
) -> None:
    sap.script("BAPI_PRODORDCONF_CREATE_TT", [row])
    with pytest.raises(TransientError) as info:
        await erp.confirm_operation(make_order(), confirm(), key=key("c1"), retry=False)
    assert info.value.code == f"{row['ID']}/{row['NUMBER']}"
    assert sap.names() == ["BAPI_PRODORDCONF_CREATE_TT", "BAPI_TRANSACTION_ROLLBACK"]


async def test_communication_error_is_transient_and_the_retry_posts_once(sap: FakeSap, erp: SapRfcConnector) -> None:
    sap.script("BAPI_PRODORDCONF_CREATE_TT", CommunicationError("partner '10.0.0.5:3300' not reached"))
    with pytest.raises(TransientError, match="communication"):
        await erp.confirm_operation(make_order(), confirm(), key=key("c1"), retry=False)
    assert "BAPI_TRANSACTION_COMMIT" not in sap.names()

    result = await erp.confirm_operation(make_order(), confirm(), key=key("c1"), retry=True)
    assert not result.replayed and len(sap.afru) == 1
    assert sap.names()[-3:] == ["RFC_READ_TABLE", "BAPI_PRODORDCONF_CREATE_TT", "BAPI_TRANSACTION_COMMIT"]


async def test_lost_commit_is_transient_and_nothing_is_posted(sap: FakeSap, erp: SapRfcConnector) -> None:
    sap.script("BAPI_TRANSACTION_COMMIT", CommunicationError("connection closed"))
    with pytest.raises(TransientError):
        await erp.confirm_operation(make_order(), confirm(), key=key("c1"), retry=False)
    assert sap.names().count("BAPI_TRANSACTION_COMMIT") == 1


async def test_logon_error_is_a_business_rejection(sap: FakeSap, erp: SapRfcConnector) -> None:
    sap.script(
        "BAPI_PRODORD_COMPLETE_TECH",
        LogonError("Name or password is incorrect (repeat logon)", key="RFC_ERROR_LOGON_FAILURE"),
    )
    with pytest.raises(BusinessRejection, match="SAP logon/authorization failed: Name or password") as info:
        await erp.complete_order(make_order(), CompleteOrder(), key=key("teco"), retry=False)
    assert info.value.code == "RFC_ERROR_LOGON_FAILURE"
    assert "BAPI_TRANSACTION_COMMIT" not in sap.names()


async def test_abap_application_error(sap: FakeSap, erp: SapRfcConnector) -> None:
    sap.script(
        "BAPI_ALM_NOTIF_CREATE",
        ABAPApplicationError("Equipment 10000042 does not exist", msg_class="IE", msg_number="007"),
    )
    cmd = MaintenanceNotification(equipment="10000042", priority=1, description="Leak")
    with pytest.raises(BusinessRejection) as info:
        await erp.maintenance_notification(make_order(), cmd, key=key("n"), retry=False)
    assert info.value.code == "IE/007"
    assert sap.names() == ["BAPI_ALM_NOTIF_CREATE", "BAPI_TRANSACTION_ROLLBACK"]

    sap.script("BAPI_ALM_NOTIF_CREATE", ABAPApplicationError("Equipment 10000042 is locked by user MILLER"))
    with pytest.raises(TransientError):
        await erp.maintenance_notification(make_order(), cmd, key=key("n"), retry=False)


async def test_retry_finds_earlier_confirmation_by_ex_ident(sap: FakeSap, erp: SapRfcConnector) -> None:
    order = make_order()
    first = await erp.confirm_operation(order, confirm(), key=key("c1"), retry=False)
    again = await erp.confirm_operation(order, confirm(), key=key("c1"), retry=True)
    assert again.replayed and again.documents == first.documents
    assert sap.names().count("BAPI_PRODORDCONF_CREATE_TT") == 1
    assert sap.names()[-1] == "RFC_READ_TABLE" and len(sap.afru) == 1  # looked up, not posted again
    read = sap.params("RFC_READ_TABLE")[0]
    assert read["QUERY_TABLE"] == "AFRU" and read["OPTIONS"] == [{"TEXT": f"EXTID = '{key('c1')}'"}]
    # Another order with the same key (impossible by construction) is not taken for it.
    other = await erp.confirm_operation(make_order("1004158"), confirm(), key=key("c1"), retry=True)
    assert not other.replayed


async def test_retry_finds_other_postings(sap: FakeSap, erp: SapRfcConnector) -> None:
    order = make_order()
    sap.lots["010000000123"] = {"order": "000001004157", "plant": "1000", "ud": None}
    receipt = GoodsReceipt(quantity=Quantity(quantity=Decimal(38), uom="H87"))
    notif = MaintenanceNotification(equipment="10000042", priority=2, description="Vibration")
    results = []
    for retry in (False, True):
        results.append(
            [
                await erp.goods_receipt(order, receipt, key=key("gr"), retry=retry),
                await erp.complete_order(order, CompleteOrder(), key=key("teco"), retry=retry),
                await erp.usage_decision(order, UsageDecision(decision="scrap"), key=key("ud"), retry=retry),
                await erp.maintenance_notification(order, notif, key=key("n"), retry=retry),
            ]
        )
    for first, again in zip(*results, strict=True):
        assert again.replayed and again.documents == first.documents
    names = sap.names()
    # The fake takes a duplicate posting (as a real SAP may): the look-ups precede the retries' calls,
    # and SAP's own tables hold one document per key.
    retried = names[names.index("BAPI_GOODSMVT_CREATE") + 1:]
    assert retried.index("RFC_READ_TABLE") < len(retried) and "BAPI_GOODSMVT_CREATE" not in retried
    assert [r["BKTXT"] for r in sap.mkpf] == [sap.mkpf[0]["BKTXT"]]
    assert names.count("BAPI_TRANSACTION_COMMIT") == 4
    assert names.count("BAPI_GOODSMVT_CREATE") == 1 and names.count("BAPI_ALM_NOTIF_CREATE") == 1
    assert names.count("BAPI_PRODORD_COMPLETE_TECH") == 1 and names.count("BAPI_INSPLOT_SETUSAGEDECISION") == 1


async def test_mixed_movement_types_post_one_document_per_gm_code(sap: FakeSap, erp: SapRfcConnector) -> None:
    items = [
        GoodsMovementItem(material="RM-1", quantity=Quantity(quantity=Decimal(1), uom="KGM"), movement_type="261"),
        GoodsMovementItem(material="BY-1", quantity=Quantity(quantity=Decimal(1), uom="KGM"), movement_type="531"),
    ]
    result = await erp.goods_movement(make_order(), GoodsMovement(items=items), key=key("mix"), retry=False)
    headers = [p["GOODSMVT_HEADER"]["HEADER_TXT"] for p in sap.params("BAPI_GOODSMVT_CREATE")]
    assert headers == [goods_movement_header_text(key("mix"), 0), goods_movement_header_text(key("mix"), 1)]
    assert len(result.documents) == 2 and sap.names().count("BAPI_TRANSACTION_COMMIT") == 2


async def test_invalid_key_is_refused(erp: SapRfcConnector) -> None:
    with pytest.raises(BusinessRejection):
        await erp.confirm_operation(make_order(), confirm(), key="x' OR '1' = '1", retry=True)


def test_fixture_response_classifies_as_success() -> None:
    es_return = ET.parse(FIXTURE).getroot().find("ES_RETURN")
    assert es_return is not None
    outcome = Outcome("CO_MES_PRODORDCONF_CREATE_TT", messages({c.tag: c.text or "" for c in es_return}, CORU_ROWS))
    assert outcome.error() is None
    assert [m.code for m in outcome.info] == ["RU/100", "CO_MES_INT/037"]
    assert CORU_ROWS[0]["CONF_NO"] == "0000001114" and CORU_ROWS[0]["CONF_CNT"] == "00000001"


@pytest.mark.parametrize(
    ("exc", "expected", "text"),
    [
        (CommunicationError("timeout"), TransientError, "communication"),
        (RFCLibError("lib"), TransientError, "communication"),
        (TimeoutError("read timed out"), TransientError, "communication"),
        (RFCError("other"), TransientError, "RFC error"),
        (LogonError("bad password"), BusinessRejection, "SAP logon/authorization failed"),
        (ExternalAuthorizationError("no S_RFC"), BusinessRejection, "SAP logon/authorization failed"),
        (ABAPRuntimeError("DBIF_RSQL_SQL_ERROR"), BusinessRejection, "DBIF"),
        (ABAPRuntimeError("Order is currently being processed by JOBS"), TransientError, "currently"),
        (ExternalRuntimeError("field YIELD: cannot convert"), BusinessRejection, "YIELD"),
    ],
)
def test_exception_classification(exc: Exception, expected: type[Exception], text: str) -> None:
    mapped = classify_exception(exc, "BAPI_X")
    assert isinstance(mapped, expected) and text in mapped.message
    assert classify_exception(ValueError("bug"), "BAPI_X") is None


def test_from_params_without_pyrfc_says_how_to_install() -> None:
    try:
        import pyrfc  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="sap-rfc"):
            SapRfcConnector.from_params(ashost="sap", sysnr="00", client="100", user="u", passwd="p")
    else:  # pragma: no cover
        pytest.skip("pyrfc is installed")


async def test_postings_carry_the_commands_plant_local_posting_date(sap: FakeSap, erp: SapRfcConnector) -> None:
    """The posting date is the plant-local date of the event (set by the ERP activity), not today."""
    order = make_order()
    day = date(2026, 1, 14)
    await erp.confirm_operation(order, confirm().model_copy(update={"posting_date": day}), key=key("pd-c"),
                                retry=False)
    item = GoodsMovementItem(material="RM-1", quantity=Quantity(quantity=Decimal(3), uom="KGM"), movement_type="261")
    await erp.goods_movement(order, GoodsMovement(items=[item], posting_date=day), key=key("pd-gi"), retry=False)
    await erp.goods_receipt(order, GoodsReceipt(quantity=Quantity(quantity=Decimal(38), uom="H87"),
                                                posting_date=date(2026, 1, 15)), key=key("pd-gr"), retry=False)
    (ticket,) = sap.params("BAPI_PRODORDCONF_CREATE_TT")[0]["TIMETICKETS"]
    assert ticket["POSTG_DATE"] == "20260114"
    headers = [p["GOODSMVT_HEADER"] for p in sap.params("BAPI_GOODSMVT_CREATE")]
    assert [(h["PSTNG_DATE"], h["DOC_DATE"]) for h in headers] == [("20260114", "20260114"), ("20260115", "20260115")]
    # Without one (a command recorded before posting dates existed): today's date (UTC).
    await erp.goods_movement(order, GoodsMovement(items=[item]), key=key("pd-old"), retry=False)
    assert sap.params("BAPI_GOODSMVT_CREATE")[-1]["GOODSMVT_HEADER"]["PSTNG_DATE"] == \
        datetime.now(UTC).date().strftime("%Y%m%d")
