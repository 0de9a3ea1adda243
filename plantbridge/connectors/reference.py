"""The SQLite reference systems of the dev stack: an ERP, MES, QMS, WMS and notifier that record
what they are asked, in their own SQLite tables (shared between processes), and hand out document
numbers.

They stand behind the ports of a plant whose file says `kind: reference` (and behind the notifier
of every plant): they keep every posting with its external key, and on `retry=True` look it up by
that key before posting again (like SAP's `ExternalSystemConfirmation` look-up). Like a real system
they take a second posting with the same key (`refuse_duplicates=True` refuses it instead), so only
the look-up keeps a retry from doubling a posting. They can be told to refuse a call (a business
rejection with an ERP-style message) or to fail transiently a number of times. Tests use
the in-memory reference (`connectors.memory`) instead.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, bindparam, event, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import PoolResetState

from plantbridge.canonical.commands import (
    Acknowledge,
    Alert,
    ChangeOrder,
    CompleteOrder,
    ConfirmOperation,
    Dispatch,
    GoodsMovement,
    GoodsReceipt,
    Hold,
    Inspection,
    MaintenanceNotification,
    Recall,
    Reservation,
    ShipmentReady,
    Stage,
    StepResult,
    StockBlock,
    Transfer,
    UsageDecision,
)
from plantbridge.canonical.order import ProductionOrder
from plantbridge.connectors.errors import BusinessRejection, TransientError
from plantbridge.connectors.ports import CommandDispatch

DOC_PREFIX = {
    "confirm_operation": "CONF",
    "goods_movement": "MDOC",
    "goods_receipt": "MDOC",
    "complete_order": "TECO",
    "usage_decision": "UD",
    "maintenance_notification": "NOTIF",
}


class _Base(DeclarativeBase):
    pass


class ReferenceCall(_Base):
    __tablename__ = "reference_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(10))
    operation: Mapped[str] = mapped_column(String(40))
    plant: Mapped[str] = mapped_column(String(10))
    order_number: Mapped[str] = mapped_column(String(20), index=True)
    # Not unique: a real ERP takes a second posting with the same key (an older dev file still has the
    # unique index: a doubled posting is refused there, as a transient error the retry's look-up answers).
    external_key: Mapped[str] = mapped_column(String(64), index=True)
    document: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReferenceRule(_Base):
    """Refuse (business) or fail (transient) the next calls matching system/operation/order."""

    __tablename__ = "reference_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(10))
    operation: Mapped[str] = mapped_column(String(40))
    order_number: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # "business" | "transient" | "hang" (no answer `code` s, then the call) | "stall" (the call, then no answer)
    kind: Mapped[str] = mapped_column(String(10))
    code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    message: Mapped[str] = mapped_column(Text)
    remaining: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: until cleared


# The row id numbers the document, as an ERP's number range would: the id is the next rowid, taken in the
# same statement (SQLite runs one writer at a time), so the row and its number are one INSERT. Nothing is
# written when a rule for the operation matches (unless the caller applied the rules already).
_INSERT = text("""
INSERT INTO reference_calls (id, system, operation, plant, order_number, external_key, document, payload, at)
SELECT n, :system, :operation, :plant, :order_number, :external_key, printf('%s-%08d', :prefix, n), :payload, :at
FROM (SELECT coalesce(max(id), 0) + 1 AS n FROM reference_calls)
WHERE :rules_applied OR NOT EXISTS (
    SELECT 1 FROM reference_rules
    WHERE system = :system AND operation = :operation AND (order_number IS NULL OR order_number = :order_number))
RETURNING document
""").bindparams(bindparam("at", type_=DateTime(timezone=True)), bindparam("rules_applied", type_=Boolean))
_RULE_TABLE = ReferenceRule.__table__
_CALL_TABLE = ReferenceCall.__table__
_RULES = select(_RULE_TABLE).where(_RULE_TABLE.c.system == bindparam("system"),
                                   _RULE_TABLE.c.operation == bindparam("operation"))
_FOUND = (select(_CALL_TABLE.c.document).where(_CALL_TABLE.c.external_key == bindparam("key"))
          .order_by(_CALL_TABLE.c.id).limit(1))


def _reset_if_open(dbapi_conn: Any, _record: Any, state: PoolResetState) -> None:
    """The pool's reset on check-in: a ROLLBACK only when the connection still holds a transaction (none after
    a commit: the default ROLLBACK would be a round trip to aiosqlite's thread for nothing). As the store's
    engine does (store/engine.py; connectors import no store)."""
    if state.asyncio_safe and not state.transaction_was_reset and dbapi_conn.driver_connection.in_transaction:
        dbapi_conn.rollback()


def _posting(system: str, operation: str, order: ProductionOrder, payload: BaseModel, key: str) -> dict[str, Any]:
    return {"system": system, "operation": operation, "plant": order.plant, "order_number": order.number,
            "external_key": key, "prefix": DOC_PREFIX.get(operation, system.upper()),
            "payload": payload.model_dump_json(), "at": datetime.now(UTC)}



@dataclass(frozen=True)
class RecordedCall:
    system: str
    operation: str
    order: str
    external_key: str
    document: str
    payload: dict[str, Any]


class ReferenceStore:
    """The shared state of all reference systems (one SQLite file, usable from many processes)."""

    def __init__(self, url: str, *, latency_s: float = 0.0, refuse_duplicates: bool = False) -> None:
        self.url = url
        self.latency_s = latency_s
        self.refuse_duplicates = refuse_duplicates
        self.engine: AsyncEngine = create_async_engine(url, connect_args={"timeout": 30}, pool_reset_on_return=None)
        event.listen(self.engine.sync_engine, "reset", _reset_if_open)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._ready = False

    async def init(self) -> ReferenceStore:
        if not self._ready:
            async with self.engine.begin() as conn:
                await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                await conn.run_sync(_Base.metadata.create_all)
            self._ready = True
        return self

    async def close(self) -> None:
        await self.engine.dispose()

    def systems(self) -> ReferenceSystems:
        return ReferenceSystems(self)

    # -- rules, for tests and the demo ---------------------------------------------------------
    async def add_rule(
        self,
        system: str,
        operation: str,
        *,
        message: str,
        kind: str = "business",
        code: str | None = None,
        order: str | None = None,
        times: int | None = None,
    ) -> int:
        await self.init()
        async with self.sessions() as s:
            rule = ReferenceRule(
                system=system,
                operation=operation,
                order_number=order,
                kind=kind,
                code=code,
                message=message,
                remaining=times,
            )
            s.add(rule)
            await s.commit()
            return rule.id

    async def clear_rules(self) -> None:
        await self.init()
        async with self.sessions() as s:
            for rule in (await s.scalars(select(ReferenceRule))).all():
                await s.delete(rule)
            await s.commit()

    async def calls(
        self, system: str | None = None, operation: str | None = None, order: str | None = None
    ) -> list[RecordedCall]:
        await self.init()
        async with self.sessions() as s:
            stmt = select(ReferenceCall).order_by(ReferenceCall.id)
            if system:
                stmt = stmt.where(ReferenceCall.system == system)
            if operation:
                stmt = stmt.where(ReferenceCall.operation == operation)
            if order:
                stmt = stmt.where(ReferenceCall.order_number == order)
            return [
                RecordedCall(c.system, c.operation, c.order_number, c.external_key, c.document, c.payload)
                for c in (await s.scalars(stmt)).all()
            ]

    # -- the call itself -----------------------------------------------------------------------
    async def record(
        self, system: str, operation: str, order: ProductionOrder, payload: BaseModel, *, key: str, retry: bool
    ) -> StepResult:
        """One posting, in one transaction: the posting (found by its external key when it exists, as a real
        ERP connector looks it up), numbered by its row, unless a rule for this operation says otherwise.

        A first call with no rule for it (the common case) is one statement and its commit."""
        await self.init()
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        posting = _posting(system, operation, order, payload, key)
        async with self.engine.connect() as conn:
            if not (retry or self.refuse_duplicates):
                document = await self._insert(conn, posting, rules_applied=False)
                if document is not None:
                    await conn.commit()
                    return StepResult(documents=[document])
                await conn.rollback()  # a rule matches: read it below (and hold no write lock meanwhile)
            rules = [r for r in (await conn.execute(_RULES, {"system": system, "operation": operation})).all()
                     if r.order_number in (None, order.number)]
            hang = max((float(r.code or 60) for r in rules if r.kind == "hang"), default=0.0)
            if not hang:
                return await self._post(conn, posting, rules, retry)
        await asyncio.sleep(hang)  # a call that hangs (no answer); the activity's timeout cuts it off
        async with self.engine.connect() as conn:
            return await self._post(conn, posting, rules, retry)

    async def _post(self, conn: AsyncConnection, posting: dict[str, Any], rules: list[Any], retry: bool) -> StepResult:
        # On a retry, look the posting up by its external key first, as a real ERP connector does; a first
        # call is taken even when the key exists (a real ERP may), unless the store refuses duplicates.
        system, key = posting["system"], posting["external_key"]
        if retry or self.refuse_duplicates:
            found = await self._found(conn, key)
            if found is not None and retry:
                return found
            if found is not None:
                raise BusinessRejection(f"a posting with external key {key} exists: {found.documents[0]}",
                                        system=system, code="DUPLICATE")
        await self._apply_rules(conn, system, [r for r in rules if r.kind not in ("hang", "stall")])
        document = await self._insert(conn, posting, rules_applied=True)
        assert document is not None  # the rules were applied: the statement inserts
        await conn.commit()
        stall = max((float(r.code or 60) for r in rules if r.kind == "stall"), default=0.0)
        if stall:  # posted, then no answer for a while: the caller may time out or die meanwhile
            await asyncio.sleep(stall)
        return StepResult(documents=[document])

    @staticmethod
    async def _insert(conn: AsyncConnection, posting: dict[str, Any], *, rules_applied: bool) -> str | None:
        """Insert the posting and its document number; None (nothing written) when a rule matches and
        `rules_applied` is false."""
        try:
            return cast(str | None, await conn.scalar(_INSERT, {**posting, "rules_applied": rules_applied}))
        except IntegrityError:  # an older dev file keeps a unique index on the key
            await conn.rollback()
            raise TransientError("concurrent posting with the same external key", system=posting["system"]) from None

    @staticmethod
    async def _found(conn: AsyncConnection, key: str) -> StepResult | None:
        """The posting with this external key, if the system has it."""
        document = await conn.scalar(_FOUND, {"key": key})
        return None if document is None else StepResult(documents=[document], message="found by external key",
                                                         replayed=True)

    @staticmethod
    async def _apply_rules(conn: AsyncConnection, system: str, rules: list[Any]) -> None:
        for rule in rules:
            if rule.remaining is not None:
                if rule.remaining <= 0:
                    continue
                await conn.execute(update(ReferenceRule).where(ReferenceRule.id == rule.id)
                                   .values(remaining=ReferenceRule.remaining - 1))
                await conn.commit()
            if rule.kind == "transient":
                raise TransientError(rule.message, system=system, code=rule.code)
            raise BusinessRejection(rule.message, system=system, code=rule.code)


class _System(CommandDispatch):
    system = ""

    def __init__(self, store: ReferenceStore) -> None:
        self.store = store

    async def _call(self, operation: str, order: ProductionOrder, cmd: BaseModel, key: str, retry: bool) -> StepResult:
        return await self.store.record(self.system, operation, order, cmd, key=key, retry=retry)


class ReferenceErp(_System):
    system = "erp"

    async def confirm_operation(
        self, order: ProductionOrder, cmd: ConfirmOperation, *, key: str, retry: bool
    ) -> StepResult:
        return await self._call("confirm_operation", order, cmd, key, retry)

    async def goods_movement(self, order: ProductionOrder, cmd: GoodsMovement, *, key: str, retry: bool) -> StepResult:
        return await self._call("goods_movement", order, cmd, key, retry)

    async def goods_receipt(self, order: ProductionOrder, cmd: GoodsReceipt, *, key: str, retry: bool) -> StepResult:
        return await self._call("goods_receipt", order, cmd, key, retry)

    async def complete_order(self, order: ProductionOrder, cmd: CompleteOrder, *, key: str, retry: bool) -> StepResult:
        return await self._call("complete_order", order, cmd, key, retry)

    async def usage_decision(self, order: ProductionOrder, cmd: UsageDecision, *, key: str, retry: bool) -> StepResult:
        return await self._call("usage_decision", order, cmd, key, retry)

    async def maintenance_notification(
        self, order: ProductionOrder, cmd: MaintenanceNotification, *, key: str, retry: bool
    ) -> StepResult:
        return await self._call("maintenance_notification", order, cmd, key, retry)


class ReferenceMes(_System):
    system = "mes"

    async def dispatch(self, order: ProductionOrder, cmd: Dispatch, *, key: str, retry: bool) -> StepResult:
        return await self._call("dispatch", order, cmd, key, retry)

    async def recall(self, order: ProductionOrder, cmd: Recall, *, key: str, retry: bool) -> StepResult:
        return await self._call("recall", order, cmd, key, retry)

    async def change_order(self, order: ProductionOrder, cmd: ChangeOrder, *, key: str, retry: bool) -> StepResult:
        return await self._call("change_order", order, cmd, key, retry)

    async def hold(self, order: ProductionOrder, cmd: Hold, *, key: str, retry: bool) -> StepResult:
        return await self._call("hold", order, cmd, key, retry)

    async def acknowledge(self, order: ProductionOrder, cmd: Acknowledge, *, key: str, retry: bool) -> StepResult:
        return await self._call("acknowledge", order, cmd, key, retry)


class ReferenceQms(_System):
    system = "qms"

    async def inspection(self, order: ProductionOrder, cmd: Inspection, *, key: str, retry: bool) -> StepResult:
        return await self._call("inspection", order, cmd, key, retry)


class ReferenceWms(_System):
    system = "wms"

    async def stage(self, order: ProductionOrder, cmd: Stage, *, key: str, retry: bool) -> StepResult:
        return await self._call("release_staging" if cmd.release else "stage", order, cmd, key, retry)

    async def stock_block(self, order: ProductionOrder, cmd: StockBlock, *, key: str, retry: bool) -> StepResult:
        return await self._call("block" if cmd.blocked else "unblock", order, cmd, key, retry)

    async def transfer(self, order: ProductionOrder, cmd: Transfer, *, key: str, retry: bool) -> StepResult:
        return await self._call("transfer", order, cmd, key, retry)

    async def reserve(self, order: ProductionOrder, cmd: Reservation, *, key: str, retry: bool) -> StepResult:
        return await self._call("reserve", order, cmd, key, retry)

    async def shipment_ready(self, order: ProductionOrder, cmd: ShipmentReady, *, key: str, retry: bool) -> StepResult:
        return await self._call("shipment_ready", order, cmd, key, retry)


class ReferenceNotifier(_System):
    system = "notify"

    async def alert(self, order: ProductionOrder, cmd: Alert, *, key: str, retry: bool) -> StepResult:
        return await self._call("alert", order, cmd, key, retry)


class ReferenceSystems:
    """All five reference systems of one plant, sharing one store."""

    def __init__(self, store: ReferenceStore) -> None:
        self.erp = ReferenceErp(store)
        self.mes = ReferenceMes(store)
        self.qms = ReferenceQms(store)
        self.wms = ReferenceWms(store)
        self.notify = ReferenceNotifier(store)
