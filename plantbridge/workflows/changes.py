"""The saga follows its order in the ERP (issue 14): `order_changed` notices, the read, the due date.

The gateway signals `order_changed(OrderChangeNotice)` (plant, order, version) on an S/4HANA
`ProductionOrder.Changed` event or a repeated LOIPRO IDoc. The notice carries no order data: the
saga reads the order through `erp.read_order` and acts on the difference (`change_plan.py`). A
notice whose version is not newer than the applied one is noted and ignored; notices arriving while
a read runs collapse into one more read. Mixed into `ProductionOrderWorkflow`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from plantbridge import contract
    from plantbridge.canonical.exceptions import SupervisorAction
    from plantbridge.canonical.order import OrderChangeNotice, OrderReleaseNotice, ProductionOrder, ReadOrderRequest
    from plantbridge.canonical.states import END_STATES, OrderState
    from plantbridge.workflows import patches
    from plantbridge.workflows.change_plan import ERP_ACTOR, apply_order_change
    from plantbridge.workflows.order_changes import is_newer
    from plantbridge.workflows.sla import SlaTimers

READ_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                         maximum_attempts=20)


class OrderChanges(SlaTimers):
    """`order_changed` and the task that reads and applies the ERP's current order."""

    _changes_wanted: int
    _release_reading: bool

    def _release(self) -> None:
        self.logic.release(workflow.now())
        self._watch_once(("release",), self._watch_release)
        self._publish()

    def _release_notice(self, notice: OrderReleaseNotice) -> None:
        """`order_released` (patch `release-reads-order`): read the released order, then release."""
        s = self.s
        if notice.plant != s.order.plant or notice.order != s.order.number:
            self.logic.note(workflow.now(), "release", f"release for {notice.plant}/{notice.order} ignored: "
                                                       "not this order")
            self._publish()
            return
        if not self._release_reading:  # several notices while a read runs: that read decides
            self._release_reading = True
            self._spawn(self._read_release())

    async def _read_release(self) -> None:
        s = self.s
        self._running += 1
        try:
            order: ProductionOrder = await workflow.execute_activity(
                contract.ERP_READ_ORDER, ReadOrderRequest(plant=s.order.plant, order=s.order.number),
                result_type=ProductionOrder, start_to_close_timeout=s.policy.activity_timeout,
                retry_policy=READ_RETRY)
        except ActivityError as err:
            cause = str(err.cause or err)[:300]
            self.logic.note(workflow.now(), "release", f"reading the released order from the ERP failed: {cause}")
            self.logic.alert(workflow.now(), f"release-read-{workflow.info().run_id[:8]}", "warning", "release",
                             f"order {s.order.number}: release not applied: {cause}")
            self._publish()
            return
        finally:
            self._running -= 1
            self._release_reading = False
        if s.state is not OrderState.PLANNED or self._cancel is not None:
            return
        if order.plant != s.order.plant or order.number != s.order.number or not order.released:
            held = "released" if order.released else "not released"
            self.logic.note(workflow.now(), "release", f"release ignored: the ERP holds order {order.plant}/"
                                                       f"{order.number} {held}")
            self._publish()
            return
        s.order = order
        self._release()

    def _change_notice(self, notice: OrderChangeNotice) -> None:
        s = self.s
        now = workflow.now()
        if notice.plant != s.order.plant or notice.order != s.order.number:
            self.logic.note(now, "order_change", f"notice for {notice.plant}/{notice.order} ignored: not this order")
            return
        if s.state in END_STATES or s.state is OrderState.PLANNED or s.erp_closed is not None or self._cancel:
            self.logic.note(now, "order_change", f"ERP change notice ({notice.version}) ignored: "
                                                 f"the order is {s.state.value}")
            self._publish()
            return
        if notice.version is not None and s.order.version is not None and not is_newer(notice.version, s.order.version):
            self.logic.note(now, "order_change", f"ERP change notice ignored: version {notice.version} is not "
                                                 f"newer than the applied {s.order.version} ({notice.source})")
            self._publish()
            return
        self._changes_wanted += 1

    async def _follow_changes(self) -> None:
        """Read the order after each notice (several waiting notices: one read) and apply it."""
        while True:
            # Not held back while rolling over: `_continue_as_new` waits until no notice is left unread.
            await workflow.wait_condition(lambda: self._changes_wanted > 0)
            if not self._patches.on(patches.ORDER_CHANGES):
                self._changes_wanted = 0
                continue
            self._changes_wanted = 0
            s = self.s
            self._running += 1
            try:
                order: ProductionOrder = await workflow.execute_activity(
                    contract.ERP_READ_ORDER, ReadOrderRequest(plant=s.order.plant, order=s.order.number),
                    result_type=ProductionOrder, start_to_close_timeout=s.policy.activity_timeout,
                    retry_policy=READ_RETRY)
            except ActivityError as err:
                cause = str(err.cause or err)[:300]
                self.logic.note(workflow.now(), "order_change", f"reading the order from the ERP failed: {cause}")
                self.logic.alert(workflow.now(), f"change-read-{s.order_changes}-{workflow.info().run_id[:8]}",
                                 "warning", "order_change", f"order {s.order.number}: ERP change not applied: {cause}")
                self._publish()
                continue
            finally:
                self._running -= 1
            self._apply_read(order)

    def _apply_read(self, order: ProductionOrder) -> None:
        s = self.s
        now = workflow.now()
        old_end = s.order.end_date
        if s.state in END_STATES or self._cancel is not None:
            return
        outcome = apply_order_change(self.logic, order, now)
        if outcome.note:
            self.logic.note(now, "order_change", outcome.note)
        if outcome.cancel_reason is not None and self._cancel is None and s.state not in END_STATES:
            action = SupervisorAction(by=ERP_ACTOR, reason=outcome.cancel_reason)
            self._cancel = action
            s.cancel_requested_by = ERP_ACTOR
            self.logic.note(now, "order_change", f"cancelling: {outcome.cancel_reason}", by=ERP_ACTOR)
            self.logic.audit(contract.change_step(s.order_changes, "cancel"), ERP_ACTOR, "cancel_order",
                             reason=outcome.cancel_reason)
        elif outcome.diff is not None and outcome.diff.dates is not None and s.order.end_date != old_end:
            end = s.order.end_date
            if end is not None:
                self._watch_once(("due", end.isoformat()), lambda: self._watch_due(end))
        self._publish()

    async def _watch_due(self, end: date) -> None:
        """The order's (re-planned) end date: alert when it passes before the order is completed."""
        s = self.s
        since = datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC)
        await self._escalate(
            "order_overdue", since, timedelta(0),
            lambda: self.s.state in (OrderState.COMPLETED, *END_STATES) or self.s.order.end_date != end,
            f"order {s.order.number} not completed by its end date {end}",
        )
