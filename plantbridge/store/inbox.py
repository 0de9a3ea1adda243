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
    Table,
    Text,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from plantbridge.store.db import Database
from plantbridge.store.group_commit import Done, GroupCommit, Step, Write
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


# The hot path's statements, built once and run with bind parameters: no statement construction, coercion or
# cache-key generation per call (the compiled form is cached per dialect by the engine, keyed by the statement).
_T: Table = InboxMessage.__table__  # type: ignore[assignment]  # declared as a FromClause
_INSERTED = ("channel", "body", "content_type", "key_id", "parent_id", "status", "reason", "received_at",
             "updated_at", "attempts", "lease_owner", "lease_until", "plant", "order_number", "event_id")
_INSERT = insert(_T).values({c: bindparam(f"v_{c}", type_=_T.c[c].type) for c in _INSERTED})
_RECEIVE = _INSERT.returning(_T.c.id)
_EARLIER = _T.alias("earlier")
# The first earlier taken message with the event id (the 409 look-up of `receive_event`); the statuses are
# rendered literally (an IN of bound values is expanded on every execution).
_FIRST_TAKEN = (select(_EARLIER.c.id)
                .where(_EARLIER.c.event_id == bindparam("e_event_id", type_=_T.c.event_id.type),
                       _EARLIER.c.plant == bindparam("e_plant", type_=_T.c.plant.type),
                       _EARLIER.c.order_number == bindparam("e_order", type_=_T.c.order_number.type),
                       _EARLIER.c.status.in_([literal_column(f"'{s}'") for s in TAKEN]))
                .order_by(_EARLIER.c.id).limit(1).scalar_subquery())
_RECEIVE_EVENT = _INSERT.returning(_T.c.id, _FIRST_TAKEN.label("earlier"))
_INSERT_MANY = _INSERT.returning(_T.c.id, sort_by_parameter_order=True)
# An outcome: plant, order and event id are kept where the finish does not name them.
_FINISH = (update(_T).where(_T.c.id == bindparam("f_id", type_=Integer()))
           .values(status=bindparam("f_status", type_=_T.c.status.type),
                   reason=bindparam("f_reason", type_=_T.c.reason.type),
                   answer=bindparam("f_answer", type_=_T.c.answer.type),
                   attempts=_T.c.attempts + 1,
                   updated_at=bindparam("f_updated_at", type_=_T.c.updated_at.type),
                   lease_owner=None, lease_until=None,
                   plant=func.coalesce(bindparam("f_plant", type_=_T.c.plant.type), _T.c.plant),
                   order_number=func.coalesce(bindparam("f_order", type_=_T.c.order_number.type),
                                              _T.c.order_number),
                   event_id=func.coalesce(bindparam("f_event_id", type_=_T.c.event_id.type), _T.c.event_id)))

# The re-driver's look-ups, every second (see `due_deferred`, `stale_received`).
_DEFERRED = (select(_T.c.id, _T.c.updated_at, _T.c.attempts).where(_T.c.status == literal_column("'deferred'"))
             .order_by(_T.c.id).limit(bindparam("n", type_=Integer())))
_STALE = (select(_T.c.id)
          .where(_T.c.status == literal_column("'received'"), _T.c.parent_id.is_(None),
                 _T.c.received_at < bindparam("before", type_=_T.c.received_at.type))
          .order_by(_T.c.id).limit(bindparam("n", type_=Integer())))


class Inbox:
    """The inbox; `owner` (a gateway process's id) leases the rows it receives for `lease`.

    Its writes on the request path (receiving and finishing messages) are group-committed (`GroupCommit`): each
    returns once committed, in a transaction it may share with other requests' writes."""

    def __init__(self, db: Database, *, owner: str | None = None, lease: timedelta = DEFAULT_LEASE) -> None:
        self.db = db
        self.owner = owner
        self.lease = lease
        self._writes: GroupCommit | None = None

    @property
    def writes(self) -> GroupCommit:
        """The group-committed writer of the hot path, made on first use (an app built only to render its
        schema has no store)."""
        if self._writes is None:
            self._writes = GroupCommit(self.db.engine)
        return self._writes

    def _row(self, channel: str, body: bytes, now: datetime, *, content_type: str = "", key_id: str | None = None,
             parent_id: int | None = None, status: str = "received", reason: str | None = None,
             hints: Hints | None = None) -> dict[str, Any]:
        """The bind parameters of `_INSERT` for one message."""
        return {"v_channel": channel, "v_body": body, "v_content_type": content_type[:100], "v_key_id": key_id,
                "v_parent_id": parent_id, "v_status": status, "v_reason": reason, "v_received_at": now,
                "v_updated_at": now, "v_attempts": 0,
                "v_lease_owner": self.owner, "v_lease_until": now + self.lease if self.owner is not None else None,
                "v_plant": hints.plant if hints else None, "v_order_number": hints.order if hints else None,
                "v_event_id": hints.event_id if hints else None}

    async def receive(
        self, channel: str, body: bytes, *, content_type: str = "", key_id: str | None = None,
        parent_id: int | None = None, status: str = "received", reason: str | None = None,
    ) -> int:
        """Store a message as received (committed before anything else happens); returns its id."""
        params = self._row(channel, body, utcnow(), content_type=content_type, key_id=key_id, parent_id=parent_id,
                           status=status, reason=reason)
        return await self.writes.run(Write([Step(_RECEIVE, params)], _first_id))

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
        rows = [self._row(channel, body, now, content_type="application/json", key_id=key_id, parent_id=parent_id,
                          hints=hints[i] if i < len(hints) else None) for i, body in enumerate(bodies)]
        return [int(i) for i in (await conn.execute(_INSERT_MANY, rows)).scalars().all()]

    async def receive_event(self, channel: str, body: bytes, hints: Hints, *, content_type: str = "",
                            key_id: str | None = None) -> tuple[int, int | None]:
        """Store a checked plant event as received; its id, and in the same statement the id of the first
        earlier message with its event id for its plant and order that was taken (`TAKEN`), if any: the
        409 look-up costs no second round trip."""
        params = self._row(channel, body, utcnow(), content_type=content_type, key_id=key_id, hints=hints)
        params.update(e_event_id=hints.event_id, e_plant=hints.plant, e_order=hints.order)
        return await self.writes.run(Write([Step(_RECEIVE_EVENT, params)], _id_and_earlier))

    async def receive_batch(self, channel: str, body: bytes, children: list[tuple[bytes, Hints | None]], *,
                            content_type: str = "", key_id: str | None = None,
                            ) -> tuple[int, list[int], dict[Hints, int]]:
        """Store a batch and its events in one transaction: the batch's id, its children's ids (in order) and,
        for the children with hints, the first earlier taken message with the same event id (as `receive_event`)."""
        parent = self._row(channel, body, utcnow(), content_type=content_type, key_id=key_id)
        hinted = [h for _b, h in children if h is not None]
        async with self.db.engine.begin() as conn:
            parent_id = int((await conn.execute(_RECEIVE, parent)).scalar_one())
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
        steps = [Step(_FINISH, _finish_params(msg_id, status, **kwargs)) for msg_id, status, kwargs in outcomes]
        if steps:
            await self.writes.run(Write(steps, _all_found))

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
        """Deferred messages whose backoff has run out, oldest first (so an order's events keep their order).

        Asked every second by each gateway: a Core look-up of ids and backoffs first, whole rows only for those
        due (most rounds find none)."""
        async with self.db.engine.connect() as conn:
            found = (await conn.execute(_DEFERRED, {"n": limit})).all()
        due = [r.id for r in found if _aware(r.updated_at) + deferral_backoff(r.attempts) <= now]
        return await self.messages(ids=due, limit=limit) if due else []

    async def stale_received(self, before: datetime, *, limit: int = 200) -> list[InboxMessage]:
        """Messages (not a batch's events) still `received` that were received before `before`, oldest first;
        as `due_deferred`, a Core look-up first."""
        async with self.db.engine.connect() as conn:
            ids = [int(i) for i in (await conn.execute(_STALE, {"before": before, "n": limit})).scalars()]
        return await self.messages(ids=ids, limit=limit) if ids else []

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


def _first_id(done: list[Done]) -> int:
    return int(done[0].rows[0][0])


def _id_and_earlier(done: list[Done]) -> tuple[int, int | None]:
    msg_id, earlier = done[0].rows[0]
    return int(msg_id), (int(earlier) if earlier is not None else None)


def _all_found(done: list[Done]) -> None:
    for one in done:
        if one.rowcount == 0:  # pragma: no cover - rows are never deleted
            raise LookupError("an inbox message to finish does not exist")


def _finish_params(msg_id: int, status: str, *, reason: str | None = None, answer: Any = None,
                   plant: str | None = None, order: str | None = None, event_id: str | None = None) -> dict[str, Any]:
    """The bind parameters of `_FINISH`: NULs replaced, the reason cut to 2,000 characters."""
    reason, answer, plant, order, event_id = _no_nul((reason, answer, plant, order, event_id))
    return {"f_id": msg_id, "f_status": status, "f_reason": reason[:2000] if reason else None, "f_answer": answer,
            "f_updated_at": utcnow(), "f_plant": plant, "f_order": order, "f_event_id": event_id}


def deferral_backoff(attempts: int) -> timedelta:
    """How long a deferred message rests before the next delivery: 1 s, 2 s, 4 s ... at most a minute."""
    return timedelta(seconds=min(2 ** max(attempts - 1, 0), 60))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite drops the offset


def _no_nul(value: Any) -> Any:
    """The value with NUL characters replaced (U+FFFD): PostgreSQL's text and JSON cannot store U+0000, and a
    hostile body's field names or values reach the reason and the answer."""
    if "\\x00" not in repr(value):  # none anywhere (repr writes a NUL as \x00): no walk through the answer
        return value
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_no_nul(k): _no_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_no_nul(v) for v in value)
    return value
