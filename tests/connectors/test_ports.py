"""The ports: `execute` dispatched on the command's type, the in-memory reference (accepts a duplicate
external key unless told otherwise; a log of look-ups and postings), plant files required."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Any

import pytest

from plantbridge.canonical import commands as c
from plantbridge.canonical.commands import StepResult
from plantbridge.connectors import ports
from plantbridge.connectors.errors import BusinessRejection, OrderNotFound, TransientError, UnsupportedCommand
from plantbridge.connectors.memory import LogEntry, MemoryStore
from plantbridge.connectors.mes_rest import MesRestConnector
from plantbridge.connectors.ports import COMMAND_METHODS, CommandDispatch
from plantbridge.connectors.qms_rest import QmsRestConnector
from plantbridge.connectors.reference import ReferenceSystems
from plantbridge.connectors.sap_odata import SapODataConnector
from plantbridge.connectors.sap_rfc import SapRfcConnector
from plantbridge.connectors.wms_rest import WmsRestConnector
from plantbridge.workers.plants import PlantConfigError, load_plant, load_plants
from plantbridge.workers.registry import ConfigurationError, ConfiguredRegistry
from tests.conftest import new_order

QTY = {"quantity": "5", "uom": "H87"}
ITEM = {"material": "RM-1", "quantity": QTY, "movement_type": "261"}
# One command of each type, with the per-command method it must reach.
SAMPLES: list[tuple[Any, str]] = [
    (c.ConfirmOperation(operation="0010", work_center="W1", yield_qty=QTY), "confirm_operation"),
    (c.GoodsMovement(items=[ITEM]), "goods_movement"),
    (c.GoodsReceipt(quantity=QTY), "goods_receipt"),
    (c.CompleteOrder(), "complete_order"),
    (c.UsageDecision(decision="release"), "usage_decision"),
    (c.MaintenanceNotification(equipment="EQ-1", priority=2, description="bearing"), "maintenance_notification"),
    (c.Dispatch(), "dispatch"),
    (c.Recall(), "recall"),
    (c.Hold(reason="QA"), "hold"),
    (c.Acknowledge(event_id="e1", status="posted"), "acknowledge"),
    (c.Inspection(passed=True), "inspection"),
    (c.Stage(), "stage"),
    (c.StockBlock(blocked=True), "stock_block"),
    (c.Transfer(quantity=QTY), "transfer"),
    (c.Reservation(equipment="EQ-1", items=[ITEM]), "reserve"),
    (c.ShipmentReady(quantity=QTY), "shipment_ready"),
    (c.Alert(severity="info", topic="t", message="m"), "alert"),
]


class Recorder(CommandDispatch):
    """Every per-command method, recording which one `execute` reached."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []

    def __getattr__(self, name: str) -> Any:
        if name not in COMMAND_METHODS.values():
            raise AttributeError(name)

        async def method(order: Any, cmd: Any, *, key: str, retry: bool) -> StepResult:
            self.seen.append((name, key, retry))
            return StepResult(documents=[name])

        return method


def test_every_command_has_a_method_and_a_port() -> None:
    assert set(COMMAND_METHODS) == set(typing.get_args(typing.get_args(c.Command)[0]))
    per_port = [typing.get_args(u) or (u,) for u in (ports.ErpCommand, ports.MesCommand, ports.QmsCommand,
                                                      ports.WmsCommand, ports.NotifyCommand)]
    assert sorted(t.__name__ for ts in per_port for t in ts) == sorted(t.__name__ for t in COMMAND_METHODS)


@pytest.mark.parametrize(("cmd", "method"), SAMPLES, ids=[m for _, m in SAMPLES])
async def test_execute_dispatches_on_the_command_type(cmd: Any, method: str) -> None:
    conn = Recorder()
    result = await conn.execute(new_order(), cmd, key="K1", retry=True)
    assert result.documents == [method] and conn.seen == [(method, "K1", True)]


async def test_a_command_without_a_method_is_a_clear_error() -> None:
    class ErpOnly(CommandDispatch):
        async def complete_order(self, order: Any, cmd: Any, *, key: str, retry: bool) -> StepResult:
            return StepResult()

    with pytest.raises(UnsupportedCommand, match=r"ErpOnly cannot execute Dispatch \(no method 'dispatch'\)"):
        await ErpOnly().execute(new_order(), c.Dispatch(), key="K", retry=False)
    with pytest.raises(UnsupportedCommand, match="not a command of any port"):
        await ErpOnly().execute(new_order(), c.StepResult(), key="K", retry=False)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [SapODataConnector, SapRfcConnector, MesRestConnector, QmsRestConnector,
                                 WmsRestConnector])
def test_the_connectors_keep_their_methods_and_gain_execute(cls: type) -> None:
    assert issubclass(cls, CommandDispatch)
    handled = [m for m in COMMAND_METHODS.values() if inspect.iscoroutinefunction(getattr(cls, m, None))]
    assert handled, cls
    for name in handled:
        params = inspect.signature(getattr(cls, name)).parameters
        assert list(params)[:3] == ["self", "order", "cmd"] and params["key"].kind is inspect.Parameter.KEYWORD_ONLY


async def test_sqlite_reference_systems_execute(tmp_path: Path) -> None:
    from plantbridge.connectors.reference import ReferenceStore
    from plantbridge.store import sqlite_url

    store = await ReferenceStore(sqlite_url(tmp_path / "ref.db")).init()
    try:
        systems = ReferenceSystems(store)
        order = new_order()
        r = await systems.wms.execute(order, c.StockBlock(blocked=False), key="K-WMS", retry=False)
        again = await systems.wms.execute(order, c.StockBlock(blocked=False), key="K-WMS", retry=True)
        assert again.replayed and again.documents == r.documents
        assert [x.operation for x in await store.calls(system="wms")] == ["unblock"]
    finally:
        await store.close()


async def test_sqlite_reference_rules_numbering_and_duplicates(tmp_path: Path) -> None:
    """A call no rule matches is posted (its document numbered by its row); a rule for the operation (and the
    order, or any order) refuses the calls it counts, then the calls post again; a second first call with one
    key is a second posting unless the store refuses duplicates."""
    from plantbridge.connectors.reference import ReferenceStore
    from plantbridge.store import sqlite_url

    store = await ReferenceStore(sqlite_url(tmp_path / "ref.db")).init()
    strict = ReferenceStore(store.url, refuse_duplicates=True)
    try:
        erp, order = ReferenceSystems(store).erp, new_order()
        cmd = c.GoodsReceipt(quantity=QTY)
        assert (await erp.execute(order, cmd, key="K1", retry=False)).documents == ["MDOC-00000001"]
        await store.add_rule("erp", "goods_receipt", message="period closed", code="M7", times=1)
        await store.add_rule("erp", "goods_receipt", message="not this order", order="OTHER")
        with pytest.raises(BusinessRejection) as err:
            await erp.execute(order, cmd, key="K2", retry=False)
        assert err.value.code == "M7"
        assert (await erp.execute(order, cmd, key="K2", retry=False)).documents == ["MDOC-00000002"]
        assert (await erp.execute(order, c.CompleteOrder(), key="K3", retry=False)).documents == ["TECO-00000003"]
        assert (await erp.execute(order, cmd, key="K2", retry=False)).documents == ["MDOC-00000004"]  # taken twice
        found = await erp.execute(order, cmd, key="K2", retry=True)
        assert found.replayed and found.documents == ["MDOC-00000002"]
        with pytest.raises(BusinessRejection):
            await ReferenceSystems(strict).erp.execute(order, cmd, key="K1", retry=False)
        await store.add_rule("erp", "goods_receipt", message="locked", kind="transient", times=1)
        with pytest.raises(TransientError):
            await erp.execute(order, cmd, key="K5", retry=False)
        calls = await store.calls(system="erp")
        assert [(x.external_key, x.document) for x in calls] == [
            ("K1", "MDOC-00000001"), ("K2", "MDOC-00000002"), ("K3", "TECO-00000003"), ("K2", "MDOC-00000004")]
        assert calls[0].payload == cmd.model_dump(mode="json") and calls[0].order == order.number
    finally:
        await strict.close()
        await store.close()


# -- the in-memory reference ----------------------------------------------------------------------


async def test_memory_erp_accepts_a_duplicate_key_unless_told_to_refuse() -> None:
    """Like a real system, the store posts twice with one key: only the connector's look-up prevents it."""
    store = MemoryStore()
    erp, order, cmd = store.systems().erp, new_order(), c.GoodsReceipt(quantity=QTY)
    first = await erp.execute(order, cmd, key="K", retry=False)
    second = await erp.execute(order, cmd, key="K", retry=False)  # no look-up: a second posting
    assert first.documents != second.documents and len(await store.calls(system="erp")) == 2
    third = await erp.execute(order, cmd, key="K", retry=True)  # the look-up finds the first
    assert third.replayed and third.documents == first.documents
    assert [(e.action, e.outcome) for e in store.entries(key="K")] == [
        ("post", "posted"), ("post", "posted"), ("lookup", "found")]

    strict = MemoryStore(refuse_duplicates=True)
    await strict.systems().erp.execute(order, cmd, key="K", retry=False)
    with pytest.raises(BusinessRejection) as err:
        await strict.systems().erp.execute(order, cmd, key="K", retry=False)
    assert err.value.code == "DUPLICATE" and strict.log[-1] == LogEntry("post", "erp", "goods_receipt",
                                                                         order.number, "K", "duplicate")


async def test_memory_rules_and_lost_answers() -> None:
    store = MemoryStore()
    erp, order = store.systems().erp, new_order()
    cmd = c.ConfirmOperation(operation="0010", work_center="W1", yield_qty=QTY)
    await store.add_rule("erp", "confirm_operation", message="locked", kind="transient", times=1)
    await store.add_rule("erp", "confirm_operation", message="answer lost", kind="lost", times=1)
    with pytest.raises(TransientError, match="locked"):
        await erp.execute(order, cmd, key="K", retry=False)
    with pytest.raises(TransientError, match="answer lost"):  # posted, but the answer never came
        await erp.execute(order, cmd, key="K", retry=True)
    found = await erp.execute(order, cmd, key="K", retry=True)
    assert found.replayed and len(await store.calls(operation="confirm_operation")) == 1
    assert [(e.action, e.outcome) for e in store.log] == [
        ("post", "transient"), ("lookup", "missing"), ("post", "lost"), ("lookup", "found")]
    await store.add_rule("erp", "goods_receipt", message="'MATNR'", kind="crash", order=order.number)
    with pytest.raises(KeyError, match="MATNR"):
        await erp.execute(order, c.GoodsReceipt(quantity=QTY), key="K2", retry=False)
    await store.clear_rules()
    assert (await erp.execute(order, c.GoodsReceipt(quantity=QTY), key="K2", retry=False)).documents


async def test_memory_erp_is_an_order_source() -> None:
    erp = MemoryStore().systems().erp
    order = new_order()
    erp.put(order)
    assert (await erp.read_order(order.number)) == order
    with pytest.raises(OrderNotFound) as err:
        await erp.read_order("12345")
    assert isinstance(err.value, LookupError) and err.value.number == "12345"


# -- plants without a file ------------------------------------------------------------------------


def test_no_plant_files_is_an_error_and_an_unknown_plant_has_no_systems(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no plant files"):
        ConfiguredRegistry({}, MemoryStore())
    (tmp_path / "1000.yaml").write_text('plant: "1000"\nerp: {kind: reference}\n')
    store = MemoryStore()
    registry = ConfiguredRegistry(load_plants(tmp_path), store)
    assert registry.for_plant("1000").erp is not None
    with pytest.raises(ConfigurationError, match="plant 2000 has no plant file"):
        registry.for_plant("2000")


def test_a_plant_file_must_name_its_erp_kind(tmp_path: Path) -> None:
    path = tmp_path / "3000.yaml"
    path.write_text('plant: "3000"\npolicy: {hold_sla: PT1H}\n')
    with pytest.raises(PlantConfigError, match=r"3000.yaml: erp.kind: required.*erp: \{kind: reference\}"):
        load_plant(path)
    path.write_text('plant: "3000"\nerp: {kind: reference}\n')
    assert load_plant(path).erp.kind == "reference"


def test_unexpected_error_attempts_is_a_plant_policy() -> None:
    from plantbridge.canonical import PlantPolicy

    assert PlantPolicy().unexpected_error_attempts == 5
    assert PlantPolicy(unexpected_error_attempts=3).unexpected_error_attempts == 3
