"""The inbox service: store every message raw first, then hand it to the saga; wait, dead-letter, re-drive.

Every message is committed to the inbox (`received`) before anything else happens, then becomes
`processed` (with the answer), `waiting` (a plant event for an order without a saga yet; delivered
when the gateway starts the saga, or on replay) or `dead` (with the reason). Re-driving is safe:
the saga deduplicates by event id (a second delivery answers `duplicate`) and starts are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from temporalio.service import RPCError, RPCStatusCode

from plantbridge.canonical.ack import Acknowledgement, ErpOutcome
from plantbridge.canonical.events import PlantEvent
from plantbridge.canonical.order import workflow_id
from plantbridge.canonical.states import OrderState
from plantbridge.client import (
    RPC_TIMEOUT,
    OrderNotFound,
    SagaBusy,
    TemporalUnavailable,
    bounded,
    order_state,
    submit_event,
)
from plantbridge.gateway.auth import Caller, forbidden_plant_reason, ownership_denial
from plantbridge.gateway.bodies import parse_json
from plantbridge.gateway.deps import GatewayDeps
from plantbridge.gateway.erp_intake import ErpIntake
from plantbridge.gateway.errors import ApiError, Loc, error_body, invalid
from plantbridge.gateway.outcome import Outcome as Outcome  # re-exported: routes import it from here
from plantbridge.store.api_keys import ApiKeys
from plantbridge.store.inbox import TAKEN, Finish, Inbox, InboxMessage, InboxStatus

# Inside `Intake.finishes_held()` (a batch), outcomes are collected here and written in one transaction.
_HELD: ContextVar[list[Finish] | None] = ContextVar("plantbridge_held_finishes", default=None)

log = logging.getLogger("plantbridge.gateway")

PLANT_EVENT = "plant_event"
SAP_EVENT = "sap_event"
SAP_IDOC = "sap_idoc"
MAX_BATCH = 500
BUSY_RETRIES = 5
# A message Temporal keeps refusing as "not now" is given up (dead, for a person) after this many deliveries.
MAX_DEFERRALS = 60


def _hint(obj: Any, name: str, size: int) -> str | None:
    value = obj.get(name) if isinstance(obj, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= size else None


class Intake:
    def __init__(self, deps: GatewayDeps) -> None:
        self.deps = deps
        self.inbox = Inbox(deps.db, owner=deps.instance, lease=deps.inbox_lease)
        self.keys = ApiKeys(deps.db)

    # -- bookkeeping ---------------------------------------------------------------------------
    async def _finish(self, msg_id: int, status: InboxStatus, **kwargs: Any) -> None:
        """Record a message's outcome now, or, inside `finishes_held()`, with the others at its end."""
        held = _HELD.get()
        if held is not None:
            held.append(Finish(msg_id, status, kwargs))
        else:
            await self.inbox.finish(msg_id, status, **kwargs)

    @contextlib.contextmanager
    def finishes_held(self) -> Iterator[list[Finish]]:
        """Collect the outcomes recorded in this block (in order) instead of writing each: the caller writes
        them in one transaction (`inbox.finish_many`). A crash before that leaves the messages `received`:
        re-driven, the saga answers what it took already `duplicate`."""
        held: list[Finish] = []
        token = _HELD.set(held)
        try:
            yield held
        finally:
            _HELD.reset(token)

    async def dead(self, msg_id: int, err: ApiError, obj: Any = None) -> Outcome:
        out = Outcome.of(err)
        await self._finish(msg_id, "dead", reason=err.message, answer=out.stored(),
                                plant=_hint(obj, "plant", 10), order=_hint(obj, "order", 20),
                                event_id=_hint(obj, "event_id", 64))
        return out

    # -- plant events --------------------------------------------------------------------------
    async def plant_message(self, msg_id: int, raw: bytes, caller: Caller) -> Outcome:
        """One event or `{"events": [...]}`; a batch answers 200 with each event's own result."""
        try:
            data = parse_json(raw)
        except ApiError as err:
            return await self.dead(msg_id, err)
        if isinstance(data, dict) and "events" in data:
            return await self._batch(msg_id, data, caller)
        return await self.plant_event(msg_id, data, caller)

    async def _batch(self, msg_id: int, data: dict[str, Any], caller: Caller) -> Outcome:
        events = data["events"]
        extra = sorted(str(k)[:40] for k in data if k != "events")
        if not isinstance(events, list) or extra or not events or len(events) > MAX_BATCH:
            loc: Loc = [extra[0]] if extra else ["events"]
            msg = (f"unexpected field {extra[0]!r} beside 'events'" if extra
                   else f"'events' must be a list of 1 to {MAX_BATCH} plant events")
            return await self.dead(msg_id, ApiError(422, "validation_error", msg, [{"loc": loc, "message": msg}]))
        children = await self.inbox.children(msg_id)
        if not children:
            bodies = [json.dumps(e, ensure_ascii=False).encode() for e in events]
            ids = await self.inbox.receive_many(PLANT_EVENT, bodies, parent_id=msg_id, key_id=caller.key_id)
        else:  # re-driven after a crash: finish what was left
            ids = [c.id for c in children]
        done = {c.id: c for c in children if c.status != "received"}
        results: list[dict[str, Any]] = []
        for i, (child_id, obj) in enumerate(zip(ids, events, strict=False)):
            if child_id in done and isinstance(done[child_id].answer, dict):
                stored = done[child_id].answer
                results.append({"http_status": stored["http_status"], **stored["body"]})
                continue
            out = await self.plant_event(child_id, obj, caller, prefix=["events", i])
            results.append({"http_status": out.http_status, **out.body})
        answer = {"results": results}
        await self.inbox.finish(msg_id, "processed", answer={"http_status": 200, "body": answer},
                                reason=f"batch of {len(results)} events")
        return Outcome(200, answer)

    def admit(self, obj: Any, caller: Caller, prefix: Loc | None = None) -> PlantEvent | ApiError:
        """The event, when it is one this caller may send now (checked in memory, no I/O), else the refusal."""
        if not isinstance(obj, dict):
            msg = 'a plant event must be a JSON object (or {"events": [...]} for a batch)'
            return ApiError(422, "validation_error", msg, [{"loc": list(prefix or []), "message": msg}])
        try:
            event = PlantEvent.model_validate(self.deps.translate(obj))
        except ValidationError as err:
            return invalid(err, prefix, "plant event")
        except (RecursionError, ValueError) as err:
            return ApiError(422, "validation_error", f"invalid plant event: {err}"[:300])
        if not caller.may(event.plant):
            return ApiError(403, "forbidden_plant", forbidden_plant_reason(caller, event.plant))
        denied = ownership_denial(caller, event.event_type, event.source, self.deps.event_rules(event.plant))
        if denied is not None:
            return denied
        ahead = event.occurred_at - datetime.now(UTC)
        if ahead > self.deps.max_clock_skew:
            msg = (f"occurred_at is {ahead.total_seconds():.0f} s in the future (more than the allowed clock skew "
                   f"of {self.deps.max_clock_skew.total_seconds():.0f} s): check the sending system's clock")
            return ApiError(422, "validation_error", msg, [{"loc": [*(prefix or []), "occurred_at"], "message": msg}])
        return event

    async def plant_event(self, msg_id: int, obj: Any, caller: Caller, prefix: Loc | None = None) -> Outcome:
        """A stored event (re-driven, or in a batch re-driven): checked, compared with an earlier one, delivered."""
        event = self.admit(obj, caller, prefix)
        if isinstance(event, ApiError):
            return await self.dead(msg_id, event, obj if isinstance(obj, dict) else None)
        earlier = await self.inbox.earlier_with_event_id(event.event_id, before_id=msg_id, plant=event.plant,
                                                         order=event.order)
        return await self.checked(msg_id, event, obj, earlier)

    async def checked(self, msg_id: int, event: PlantEvent, obj: Any, earlier: InboxMessage | int | None) -> Outcome:
        """Deliver an admitted event unless `earlier` (the first taken message with its event id, or its id)
        holds other content: then 409, kept dead."""
        if isinstance(earlier, int):
            earlier = await self.inbox.get(earlier) if earlier != msg_id else None
        conflict = self._conflict(event, earlier) if earlier is not None and earlier.status in TAKEN else None
        if conflict is not None:
            return await self.dead(msg_id, conflict, obj)
        return await self.deliver(msg_id, event)

    def _conflict(self, event: PlantEvent, earlier: InboxMessage) -> ApiError | None:
        """A resent event id with other content: 409 naming the differing fields (kept dead, for a person);
        the saga would answer `duplicate` and the second content would vanish."""
        try:
            before = PlantEvent.model_validate(self.deps.translate(json.loads(earlier.body))).model_dump(mode="json")
        except (ValueError, ValidationError, RecursionError):  # the earlier body is not one event: nothing to compare
            return None
        now = event.model_dump(mode="json")
        differing = sorted(k for k in now.keys() | before.keys() if now.get(k) != before.get(k))
        if not differing:
            return None
        msg = (f"event {event.event_id} was received before (message {earlier.id}) with other content: "
               f"{', '.join(differing)} differ; kept as a dead letter for a person, not delivered")
        return ApiError(409, "conflict", msg[:500], [{"loc": [f], "message": f"differs from message {earlier.id}"}
                                                     for f in differing])

    async def deliver(self, msg_id: int, event: PlantEvent) -> Outcome:
        """Hand the event to its saga (the `submit_event` update) and record the answer."""
        for attempt in range(BUSY_RETRIES):
            try:
                ack = await submit_event(self.deps.client, event, ack_wait=self.deps.ack_wait, rpc_timeout=RPC_TIMEOUT)
            except OrderNotFound:
                return await self._wait(msg_id, event, "no saga runs for this order yet")
            except SagaBusy:
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            except TemporalUnavailable as err:  # not now: keep it, answer 503 at once, deliver it again later
                log.warning("event %s deferred: %s", event.event_id, err)
                code = "saga_limit" if err.limit else "temporal_unavailable"
                return await self._defer(msg_id, event, code, f"the order saga did not take the event now ({err})",
                                         retry_after=1 if err.limit else 5)
            except RPCError as err:  # Temporal said no for good (e.g. an invalid request): a dead letter for a person
                log.warning("event %s not delivered: %s", event.event_id, err)
                return await self._dead_event(msg_id, event, 503, "temporal_refused",
                                              f"Temporal refused the event: {err}"[:500])
            except Exception as err:  # no connection to Temporal at all: kept and delivered again later
                log.warning("event %s deferred: %s", event.event_id, err)
                return await self._defer(msg_id, event, "temporal_unavailable",
                                         f"could not reach the order saga ({err})"[:300], retry_after=5)
            if ack.status == "rejected" and await self._planned(event):
                return await self._wait(msg_id, event, "the order is not released yet")
            if ack.order_state is None and ack.status in ("accepted", "duplicate"):
                ack = await self._with_state(ack, event)
            if self.deps.uns is not None:  # fire-and-forget: never blocks nor fails the answer
                self.deps.uns.acknowledged(event, ack)
            pending = ack.erp is not None and ack.erp.status == "pending"
            out = Outcome(202 if pending else 200, ack.model_dump(mode="json"))
            await self._finish(msg_id, "processed", answer=out.stored(), reason=ack.reason,
                                    plant=event.plant, order=event.order, event_id=event.event_id)
            return out
        return await self._defer(msg_id, event, "saga_busy",
                                 "the order saga is rolling over its history; the event is delivered again shortly",
                                 retry_after=1)

    async def _defer(self, msg_id: int, event: PlantEvent, code: str, msg: str, *, retry_after: int) -> Outcome:
        return await self.defer(msg_id, code, msg, retry_after=retry_after, plant=event.plant, order=event.order,
                                event_id=event.event_id)

    async def defer(self, msg_id: int, code: str, msg: str, *, retry_after: int, plant: str | None = None,
                    order: str | None = None, event_id: str | None = None) -> Outcome:
        """Keep the message for the gateway's re-driver: 503 with `Retry-After` now, delivered again later
        (plant events, SAP events, IDocs and Odoo webhooks alike)."""
        row = await self.inbox.get(msg_id)
        if row is not None and row.attempts + 1 >= MAX_DEFERRALS:
            out = Outcome(503, error_body(503, code, f"{msg}; given up after {row.attempts + 1} deliveries: "
                                          "replay it when the cause is fixed"[:500]))
            await self._finish(msg_id, "dead", reason=msg[:500], answer=out.stored(), plant=plant, order=order,
                                    event_id=event_id)
            return out
        body = error_body(503, code, f"{msg}; the gateway keeps the message (message {msg_id}) and delivers it "
                          "again"[:500])
        out = Outcome(503, body, {"Retry-After": str(retry_after)})
        await self._finish(msg_id, "deferred", reason=msg[:500], answer=out.stored(), plant=plant,
                                order=order, event_id=event_id)
        return out

    async def _dead_event(self, msg_id: int, event: PlantEvent, status: int, code: str, msg: str) -> Outcome:
        out = Outcome(status, error_body(status, code, msg))
        await self._finish(msg_id, "dead", reason=msg, answer=out.stored(), plant=event.plant,
                                order=event.order, event_id=event.event_id)
        return out

    async def _with_state(self, ack: Acknowledgement, event: PlantEvent) -> Acknowledgement:
        """The answer with the order's current state (the saga leaves it out of some answers)."""
        try:
            view = await order_state(self.deps.client, event.plant, event.order, timeout=RPC_TIMEOUT)
        except Exception:  # the answer stands without it
            return ack
        return ack.model_copy(update={"order_state": view.state})

    async def _planned(self, event: PlantEvent) -> bool:
        try:
            view = await order_state(self.deps.client, event.plant, event.order, timeout=RPC_TIMEOUT)
        except Exception:
            return False
        return view.state is OrderState.PLANNED

    async def _wait(self, msg_id: int, event: PlantEvent, why: str) -> Outcome:
        ack = Acknowledgement(
            event_id=event.event_id, status="accepted", erp=ErpOutcome(status="pending"),
            order_state=None if why.startswith("no saga") else OrderState.PLANNED,
            reason=f"{why}: the event waits in the gateway's inbox (message {msg_id}) and is delivered "
                   "when the order is released",
        )
        out = Outcome(202, ack.model_dump(mode="json"))
        await self._finish(msg_id, "waiting", reason=why, answer=out.stored(), plant=event.plant,
                                order=event.order, event_id=event.event_id)
        # The saga may have started between the refusal and now: then deliver at once.
        if why.startswith("no saga"):
            try:
                started = await self.saga_exists(event.plant, event.order)
            except (TemporalUnavailable, RPCError) as err:  # cannot tell now: the re-driver asks again
                return await self._defer(msg_id, event, "temporal_unavailable",
                                         f"could not tell whether the order's saga runs ({err})"[:300], retry_after=5)
            if started:
                return await self.deliver(msg_id, event)
        return out

    async def saga_exists(self, plant: str, order: str) -> bool:
        try:
            handle = self.deps.client.get_workflow_handle(workflow_id(plant, order))
            desc = await bounded(handle.describe(rpc_timeout=RPC_TIMEOUT), f"describe({handle.id})")
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return desc.close_time is None

    async def deliver_waiting(self, plant: str, order: str) -> int:
        """Deliver the events that waited for this order's saga, oldest first; how many were delivered."""
        delivered = 0
        rows = await self.inbox.waiting_for(plant, order)
        claimed = set(await self.inbox.claim([r.id for r in rows], status="waiting"))
        for msg in (r for r in rows if r.id in claimed):  # another gateway delivers the others
            event = PlantEvent.model_validate(self.deps.translate(json.loads(msg.body)))
            out = await self.deliver(msg.id, event)
            delivered += out.http_status < 300 and (await self.inbox.get(msg.id) or msg).status == "processed"
        return delivered

    # -- re-driving ----------------------------------------------------------------------------
    async def redrive(self, msg: InboxMessage) -> Outcome:
        """Process a stored message again, exactly as when it arrived (with its caller's current key)."""
        if msg.channel.startswith("odoo:"):  # authenticated by its webhook token when it arrived
            from plantbridge.gateway.odoo_intake import OdooIntake

            return await OdooIntake(self).webhook(msg.id, msg.body, msg.channel.removeprefix("odoo:"))
        caller = await self.keys.get(msg.key_id) if msg.key_id else None
        if caller is None or caller.revoked_at is not None:
            err = ApiError(401, "invalid_key", "the key that sent this message is unknown or revoked")
            return await self.dead(msg.id, err)
        if msg.channel == PLANT_EVENT:
            if msg.parent_id is not None:
                try:
                    obj = parse_json(msg.body)
                except ApiError as err:
                    return await self.dead(msg.id, err)
                return await self.plant_event(msg.id, obj, caller)
            return await self.plant_message(msg.id, msg.body, caller)
        erp = ErpIntake(self)
        if msg.channel == SAP_EVENT:
            return await erp.sap_event(msg.id, msg.body, caller)
        if msg.channel == SAP_IDOC:
            return await erp.idoc(msg.id, msg.body, caller)
        return await self.dead(msg.id, ApiError(422, "unknown_channel", f"unknown channel {msg.channel!r}"))

    async def redrive_claimed(self, rows: list[InboxMessage], status: str) -> list[tuple[int, Outcome]]:
        """Re-drive those of `rows` this gateway claims (a lease on each; another gateway drives the rest)."""
        claimed = set(await self.inbox.claim([r.id for r in rows], status=status))
        done: list[tuple[int, Outcome]] = []
        for row in rows:
            if row.id in claimed:
                done.append((row.id, await self.redrive(row)))
        return done

    async def redrive_deferred(self) -> int:
        """Deliver again the deferred messages whose backoff ran out; how many were handled."""
        rows = await self.inbox.due_deferred(datetime.now(UTC))
        return len(await self.redrive_claimed(rows, "deferred"))

    async def redrive_stale_received(self) -> int:
        """Re-drive `received` messages whose lease ran out: the gateway that stored them died before
        finishing them (a live request holds its row's lease, so it is never taken from under it)."""
        before = datetime.now(UTC) - self.deps.inbox_lease
        rows = await self.inbox.stale_received(before)
        return len(await self.redrive_claimed(rows, "received"))

    async def replay(self, *, status: str | None = None, msg_id: int | None = None,
                     received_before: datetime | None = None) -> list[tuple[int, Outcome]]:
        """Re-drive stored messages: one by id, or all of a status (dead, waiting, received)."""
        if msg_id is not None:
            one = await self.inbox.get(msg_id)
            rows = [one] if one is not None else []
        else:
            rows = await self.inbox.messages(status=status or "dead", received_before=received_before, limit=100_000)
            if status == "received":  # batch children are finished through their batch
                rows = [r for r in rows if r.parent_id is None]
        done: list[tuple[int, Outcome]] = []
        for row in rows:
            if row.status == "processed":
                continue
            done.extend(await self.redrive_claimed([row], row.status))
        return done
