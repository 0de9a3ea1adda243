"""The gateway's inbox: every inbound message, stored raw before it is processed.

Statuses: `received` (stored, not yet handed over), `processed` (with the answer), `waiting` (a
plant event for an order without a saga yet), `deferred` (Temporal did not take it now: unreachable,
frozen or over a per-workflow limit; the gateway delivers it again by itself, with backoff), `dead`
(malformed, forbidden or failed for good; with the reason). Nothing is deleted; `plantbridge replay`
re-drives `dead` and `waiting` rows.

Several gateways may share one store: a row is leased to the process driving it (`lease_owner` until
`lease_until`; stamped when the row is received, cleared when it is finished). A re-driver `claim`s rows
first and only gets those whose lease ran out: `FOR UPDATE SKIP LOCKED` on PostgreSQL, the same conditional
UPDATE under SQLite's single writer, so no row is driven by two gateways at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from sqlalchemy import (
    JSON,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from plantbridge.store.db import Database
from plantbridge.store.models import Base, utcnow

InboxStatus = Literal["received", "processed", "waiting", "deferred", "dead"]
Channel = Literal["plant_event", "sap_event", "sap_idoc"]


class InboxMessage(Base):
    __tablename__ = "inbox"
    __table_args__ = (
        Index("ix_inbox_status", "status"),
        Index("ix_inbox_plant_order", "plant", "order_number"),
        Index("ix_inbox_event_id", "event_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # A batch's events are stored as children of the batch message.
    parent_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    channel: Mapped[str] = mapped_column(String(20))
    content_type: Mapped[str] = mapped_column(String(100), default="")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status: Mapped[str] = mapped_column(String(12), default="received")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer: Mapped[Any] = mapped_column(JSON, nullable=True)
    plant: Mapped[str | None] = mapped_column(String(10), nullable=True)
    order_number: Mapped[str | None] = mapped_column(String(20), nullable=True)
    event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The gateway process driving the row, and until when (see the module's docstring).
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


DEFAULT_LEASE = timedelta(seconds=60)
# The statuses of a message that was taken (handed to its saga, or waiting / deferred to be): an event id
# received again with other content after one of these is a conflict (409).
TAKEN = ("processed", "waiting", "deferred")


class Hints(NamedTuple):
    """A checked plant event's plant, order and event id, stored with it when it is received."""

    plant: str
    order: str
    event_id: str


class Finish(NamedTuple):
    """One message's outcome, for `finish_many` (the arguments of `finish`)."""

    msg_id: int
    status: InboxStatus
    kwargs: dict[str, Any]


class Inbox:
    """The inbox; `owner` (a gateway process's id) leases the rows it receives for `lease`."""

    def __init__(self, db: Database, *, owner: str | None = None, lease: timedelta = DEFAULT_LEASE) -> None:
        self.db = db
        self.owner = owner
        self.lease = lease

    def _lease_values(self, now: datetime) -> dict[str, Any]:
        if self.owner is None:
            return {}
        return {"lease_owner": self.owner, "lease_until": now + self.lease}

    async def receive(
        self, channel: str, body: bytes, *, content_type: str = "", key_id: str | None = None,
        parent_id: int | None = None, status: str = "received", reason: str | None = None,
    ) -> int:
        """Store a message as received (committed before anything else happens); returns its id."""
        now = utcnow()
        stmt = insert(InboxMessage).values(
            channel=channel, body=body, content_type=content_type[:100], key_id=key_id, parent_id=parent_id,
            status=status, reason=reason, received_at=now, updated_at=now, attempts=0, **self._lease_values(now),
        ).returning(InboxMessage.id)
        async with self.db.engine.begin() as conn:  # Core, not the ORM: one statement on the hot path
            return int((await conn.execute(stmt)).scalar_one())

    async def receive_many(self, channel: str, bodies: Iterable[bytes], *, parent_id: int,
                           key_id: str | None) -> list[int]:
        async with self.db.engine.begin() as conn:
            return await self._insert_children(conn, channel, list(bodies), [], parent_id, key_id)

    async def _insert_children(self, conn: AsyncConnection, channel: str, bodies: list[bytes],
                               hints: list[Hints | None], parent_id: int, key_id: str | None) -> list[int]:
        """Insert a batch's children in one statement; their ids, in order."""
        if not bodies:
            return []
        now = utcnow()
        lease = self._lease_values(now)
        rows = []
        for i, body in enumerate(bodies):
            hint = hints[i] if i < len(hints) else None
            rows.append({"channel": channel, "body": body, "content_type": "application/json", "key_id": key_id,
                         "parent_id": parent_id, "status": "received", "received_at": now, "updated_at": now,
                         "attempts": 0, "lease_owner": lease.get("lease_owner"),
                         "lease_until": lease.get("lease_until"),
                         "plant": hint.plant if hint else None, "order_number": hint.order if hint else None,
                         "event_id": hint.event_id if hint else None})
        stmt = insert(InboxMessage).returning(InboxMessage.id, sort_by_parameter_order=True)
        return [int(i) for i in (await conn.execute(stmt, rows)).scalars().all()]

    async def receive_event(self, channel: str, body: bytes, hints: Hints, *, content_type: str = "",
                            key_id: str | None = None) -> tuple[int, int | None]:
        """Store a checked plant event as received; its id, and in the same statement the id of the first
        earlier message with its event id for its plant and order that was taken (`TAKEN`), if any: the
        409 look-up costs no second round trip."""
        now = utcnow()
        earlier = InboxMessage.__table__.alias("earlier")
        first = (select(earlier.c.id)
                 .where(earlier.c.event_id == hints.event_id, earlier.c.plant == hints.plant,
                        earlier.c.order_number == hints.order, earlier.c.status.in_(TAKEN))
                 .order_by(earlier.c.id).limit(1).scalar_subquery())
        stmt = insert(InboxMessage).values(
            channel=channel, body=body, content_type=content_type[:100], key_id=key_id, status="received",
            received_at=now, updated_at=now, attempts=0, plant=hints.plant, order_number=hints.order,
            event_id=hints.event_id, **self._lease_values(now),
        ).returning(InboxMessage.id, first.label("earlier"))
        async with self.db.engine.begin() as conn:
            row = (await conn.execute(stmt)).one()
        return int(row[0]), (int(row[1]) if row[1] is not None else None)

    async def receive_batch(self, channel: str, body: bytes, children: list[tuple[bytes, Hints | None]], *,
                            content_type: str = "", key_id: str | None = None,
                            ) -> tuple[int, list[int], dict[Hints, int]]:
        """Store a batch and its events in one transaction: the batch's id, its children's ids (in order) and,
        for the children with hints, the first earlier taken message with the same event id (as `receive_event`)."""
        now = utcnow()
        parent = insert(InboxMessage).values(
            channel=channel, body=body, content_type=content_type[:100], key_id=key_id, status="received",
            received_at=now, updated_at=now, attempts=0, **self._lease_values(now),
        ).returning(InboxMessage.id)
        hinted = [h for _b, h in children if h is not None]
        async with self.db.engine.begin() as conn:
            parent_id = int((await conn.execute(parent)).scalar_one())
            ids = await self._insert_children(conn, channel, [b for b, _h in children], [h for _b, h in children],
                                              parent_id, key_id)
            earlier: dict[Hints, int] = {}
            if hinted:
                stmt = (select(InboxMessage.plant, InboxMessage.order_number, InboxMessage.event_id,
                               func.min(InboxMessage.id))
                        .where(InboxMessage.event_id.in_(sorted({h.event_id for h in hinted})),
                               InboxMessage.status.in_(TAKEN))
                        .group_by(InboxMessage.plant, InboxMessage.order_number, InboxMessage.event_id))
                for plant, order, event_id, first in (await conn.execute(stmt)).all():
                    earlier[Hints(str(plant), str(order), str(event_id))] = int(first)
        return parent_id, ids, earlier

    async def finish(
        self, msg_id: int, status: InboxStatus, *, reason: str | None = None, answer: Any = None,
        plant: str | None = None, order: str | None = None, event_id: str | None = None,
    ) -> None:
        await self.finish_many([Finish(msg_id, status, {"reason": reason, "answer": answer, "plant": plant,
                                                         "order": order, "event_id": event_id})])

    async def finish_many(self, outcomes: Iterable[Finish]) -> None:
        """Record messages' outcomes (in the given order) in one transaction (a batch's events and the batch)."""
        async with self.db.engine.begin() as conn:
            for msg_id, status, kwargs in outcomes:
                result = await conn.execute(update(InboxMessage).where(InboxMessage.id == msg_id)
                                            .values(**_finish_values(status, **kwargs)))
                if result.rowcount == 0:  # pragma: no cover - rows are never deleted
                    raise LookupError(f"inbox message {msg_id} does not exist")

    async def get(self, msg_id: int) -> InboxMessage | None:
        async with self.db.sessions() as session:
            return await session.get(InboxMessage, msg_id)

    async def children(self, parent_id: int) -> list[InboxMessage]:
        async with self.db.sessions() as session:
            stmt = select(InboxMessage).where(InboxMessage.parent_id == parent_id).order_by(InboxMessage.id)
            return list((await session.scalars(stmt)).all())

    async def messages(
        self, *, status: str | None = None, plants: Iterable[str] | None = None, ids: Iterable[int] | None = None,
        received_before: datetime | None = None, limit: int = 200,
    ) -> list[InboxMessage]:
        """Messages, oldest first; `plants` restricts to those plants' messages (None: all)."""
        async with self.db.sessions() as session:
            stmt = select(InboxMessage).order_by(InboxMessage.id).limit(limit)
            if status is not None:
                stmt = stmt.where(InboxMessage.status == status)
            if plants is not None:
                stmt = stmt.where(InboxMessage.plant.in_(list(plants)))
            if ids is not None:
                stmt = stmt.where(InboxMessage.id.in_(list(ids)))
            if received_before is not None:
                stmt = stmt.where(InboxMessage.received_at < received_before)
            return list((await session.scalars(stmt)).all())

    async def waiting_for(self, plant: str, order: str) -> list[InboxMessage]:
        async with self.db.sessions() as session:
            stmt = (select(InboxMessage)
                    .where(InboxMessage.status == "waiting", InboxMessage.plant == plant,
                           InboxMessage.order_number == order)
                    .order_by(InboxMessage.id))
            return list((await session.scalars(stmt)).all())

    async def earlier_with_event_id(self, event_id: str, *, before_id: int, plant: str | None = None,
                                    order: str | None = None) -> InboxMessage | None:
        """The first message with this event id for this plant and order that was taken (processed, waiting or
        deferred), if any. Event ids are unique per source and order (the saga dedups per order)."""
        async with self.db.sessions() as session:
            stmt = (select(InboxMessage)
                    .where(InboxMessage.event_id == event_id, InboxMessage.id != before_id,
                           *([InboxMessage.plant == plant] if plant is not None else []),
                           *([InboxMessage.order_number == order] if order is not None else []),
                           InboxMessage.status.in_(["processed", "waiting", "deferred"]))
                    .order_by(InboxMessage.id).limit(1))
            return (await session.scalars(stmt)).first()

    async def due_deferred(self, now: datetime, *, limit: int = 200) -> list[InboxMessage]:
        """Deferred messages whose backoff has run out, oldest first (so an order's events keep their order)."""
        rows = await self.messages(status="deferred", limit=limit)
        return [r for r in rows if _aware(r.updated_at) + deferral_backoff(r.attempts) <= now]

    async def claim(self, ids: Iterable[int], *, status: str, now: datetime | None = None) -> list[int]:
        """Lease those of `ids` that still have `status` and no running lease to this owner; the ids claimed.

        On PostgreSQL the rows are picked `FOR UPDATE SKIP LOCKED` (a row another gateway is claiming at
        this moment is skipped, not waited for); on SQLite the one UPDATE runs under the single writer lock.
        Either way the lease condition is checked again on the row as it is when it is updated.
        """
        wanted = list(ids)
        if not wanted:
            return []
        if self.owner is None:
            raise RuntimeError("claiming inbox rows needs an owner (Inbox(db, owner=...))")
        now = now or utcnow()
        free = or_(InboxMessage.lease_until.is_(None), InboxMessage.lease_until < now)
        pick = select(InboxMessage.id).where(InboxMessage.id.in_(wanted), InboxMessage.status == status, free)
        if self.db.engine.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stmt = (update(InboxMessage)
                .where(InboxMessage.id.in_(pick.scalar_subquery()), InboxMessage.status == status, free)
                .values(lease_owner=self.owner, lease_until=now + self.lease)
                .returning(InboxMessage.id))
        async with self.db.engine.begin() as conn:
            return sorted(int(i) for i in (await conn.execute(stmt)).scalars().all())

    async def release(self, msg_id: int) -> None:
        """Give a lease back (the row was claimed but not finished, e.g. the re-driver was stopped)."""
        async with self.db.engine.begin() as conn:
            await conn.execute(update(InboxMessage)
                               .where(InboxMessage.id == msg_id, InboxMessage.lease_owner == self.owner)
                               .values(lease_owner=None, lease_until=None))

    async def count(self, status: str | None = None) -> int:
        async with self.db.sessions() as session:
            stmt = select(func.count(InboxMessage.id))
            if status is not None:
                stmt = stmt.where(InboxMessage.status == status)
            return int(await session.scalar(stmt) or 0)


def _finish_values(status: str, *, reason: str | None = None, answer: Any = None, plant: str | None = None,
                   order: str | None = None, event_id: str | None = None) -> dict[str, Any]:
    reason, answer, plant, order, event_id = _no_nul((reason, answer, plant, order, event_id))
    values: dict[str, Any] = {"status": status, "reason": reason[:2000] if reason else None, "answer": answer,
                              "attempts": InboxMessage.attempts + 1, "updated_at": utcnow(),
                              "lease_owner": None, "lease_until": None}
    if plant is not None:
        values["plant"] = plant
    if order is not None:
        values["order_number"] = order
    if event_id is not None:
        values["event_id"] = event_id
    return values


def deferral_backoff(attempts: int) -> timedelta:
    """How long a deferred message rests before the next delivery: 1 s, 2 s, 4 s ... at most a minute."""
    return timedelta(seconds=min(2 ** max(attempts - 1, 0), 60))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite drops the offset


def _no_nul(value: Any) -> Any:
    """The value with NUL characters replaced (U+FFFD): PostgreSQL's text and JSON cannot store U+0000, and a
    hostile body's field names or values reach the reason and the answer."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_no_nul(k): _no_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_no_nul(v) for v in value)
    return value
