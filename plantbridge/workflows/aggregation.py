"""Aggregated postings (per the plant's posting policy): partial confirmations and consumption are
buffered and posted together at operation end or when `aggregate_every` has passed.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from plantbridge.canonical import commands as c
from plantbridge.canonical.events import ActivityTimes, PlantEvent
from plantbridge.canonical.fields import Quantity
from plantbridge.canonical.saga import BufferedConfirmation, BufferedConsumption, Step
from plantbridge.contract import aggregate_confirm_step, aggregate_goods_issue_step
from plantbridge.workflows.planner_base import PlannerBase


class AggregationMixin(PlannerBase):
    def _buffer_confirmation(self, ev: PlantEvent, now: datetime) -> None:
        assert ev.operation is not None and ev.yield_qty is not None
        progress = self.s.operations[ev.operation]
        buf = self.s.buffered_confirmations.get(ev.operation)
        if buf is None:
            buf = BufferedConfirmation(
                operation=ev.operation,
                work_center=ev.work_center or progress.work_center,
                uom=ev.yield_qty.uom,
                source=ev.source,
                since=ev.occurred_at,
            )
            self.s.buffered_confirmations[ev.operation] = buf
        buf.yield_qty += ev.yield_qty.quantity
        buf.scrap_qty += ev.scrap_qty.quantity if ev.scrap_qty else Decimal(0)
        buf.rework_qty += ev.rework_qty.quantity if ev.rework_qty else Decimal(0)
        if ev.activities is not None:
            buf.setup_min += ev.activities.setup_min
            buf.machine_min += ev.activities.machine_min
            buf.labor_min += ev.activities.labor_min
        buf.reason = ev.reason or buf.reason
        buf.event_ids.append(ev.event_id)
        self.last_buffered = True

    def _buffer_consumption(self, ev: PlantEvent, now: datetime) -> None:
        assert ev.material is not None and ev.quantity is not None
        for buf in self.s.buffered_consumption:
            if (buf.material, buf.storage_location, buf.batch, buf.uom) == (
                ev.material,
                ev.storage_location,
                ev.batch,
                ev.quantity.uom,
            ):
                break
        else:
            buf = BufferedConsumption(
                material=ev.material,
                storage_location=ev.storage_location,
                batch=ev.batch,
                uom=ev.quantity.uom,
                source=ev.source,
                since=ev.occurred_at,
            )
            self.s.buffered_consumption.append(buf)
        buf.quantity += ev.quantity.quantity
        buf.event_ids.append(ev.event_id)
        self.last_buffered = True

    def flush(self, now: datetime) -> list[Step]:
        """Post everything buffered (the aggregation interval passed, or the order is cancelled)."""
        before = len(self.s.steps)
        for op, buf in list(self.s.buffered_confirmations.items()):
            self.s.step_counter += 1
            uom = buf.uom
            cmd = c.ConfirmOperation(
                operation=op,
                work_center=buf.work_center,
                yield_qty=Quantity(quantity=buf.yield_qty, uom=uom),
                scrap_qty=Quantity(quantity=buf.scrap_qty, uom=uom),
                rework_qty=Quantity(quantity=buf.rework_qty, uom=uom),
                reason=buf.reason,
                final=False,
                activities=ActivityTimes(setup_min=buf.setup_min, machine_min=buf.machine_min, labor_min=buf.labor_min),
                goods_movements=self._backflush(op, buf.yield_qty + buf.scrap_qty),
            )
            step = self.add_step(
                now,
                aggregate_confirm_step(self.s.step_counter, op),
                cmd,
                c.StepKind.ERP_CONFIRM_OPERATION,
                event_id=buf.event_ids[0],
            )
            self._aggregated(step, buf.event_ids, buf.source, buf.since)
        self.s.buffered_confirmations.clear()
        self.flush_consumption(now)
        return self.s.steps[before:]

    def flush_consumption(self, now: datetime) -> None:
        if not self.s.buffered_consumption:
            return
        self.s.step_counter += 1
        items = [
            c.GoodsMovementItem(
                material=b.material,
                quantity=Quantity(quantity=b.quantity, uom=b.uom),
                movement_type="261",
                storage_location=b.storage_location,
                batch=b.batch,
            )
            for b in self.s.buffered_consumption
            if b.quantity > 0
        ]
        event_ids = [e for b in self.s.buffered_consumption for e in b.event_ids]
        first = self.s.buffered_consumption[0]
        self.s.buffered_consumption.clear()
        if items:
            step = self.add_step(
                now,
                aggregate_goods_issue_step(self.s.step_counter),
                c.GoodsMovement(items=items),
                c.StepKind.ERP_GOODS_MOVEMENT,
                event_id=event_ids[0],
            )
            self._aggregated(step, event_ids, first.source, first.since)

    def _aggregated(self, step: Step, event_ids: list[str], source: str, since: datetime) -> None:
        step.also_events = event_ids[1:]
        step.ack_to = source
        step.event_at = since
        self.note(step.created_at, "aggregate", f"{step.kind.value} for {len(event_ids)} event(s)")
