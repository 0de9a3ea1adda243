"""The order saga's timers: SLA alerts and escalations, the long-downtime watch, aggregation flushes.

Each watcher is a task that waits for its condition with a timeout; on timeout it alerts (a
`notify.alert` step), and escalates `escalate_after` later. Watchers are restarted after
continue-as-new from the carried state. Mixed into `ProductionOrderWorkflow`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from plantbridge import contract
    from plantbridge.canonical.events import PlantEvent
    from plantbridge.canonical.saga import AlertRecord, Step
    from plantbridge.canonical.states import END_STATES, OrderState
    from plantbridge.workflows import patches
    from plantbridge.workflows.steps import StepEngine
    from plantbridge.workflows.timers import escalate_until


class SlaTimers(StepEngine):
    """SLA watchers; `_watchers` remembers what is watched so nothing is watched twice."""

    _watchers: set[tuple[str, ...]]

    def _watch_once(self, key: tuple[str, ...], make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Start an SLA watcher unless one runs for the same thing (a handler may run before `run`)."""
        if key in self._watchers and self._patches.on(patches.SINGLE_WATCHERS):
            return
        self._watchers.add(key)
        self._spawn(make())

    def _downtime_watcher(self, work_center: str, since: datetime) -> Callable[[], Coroutine[Any, Any, None]]:
        return lambda: self._watch_downtime(work_center, since, None)

    def _restart_watchers(self) -> None:
        s = self.s
        if s.state is OrderState.RELEASED:
            self._watch_once(("release",), self._watch_release)
        if s.hold is not None:
            hold = s.hold
            self._watch_once(("hold", hold.event_id or ""), lambda: self._watch_hold(hold.event_id, hold.since))
        if s.downtime_open and self._patches.on(patches.DOWNTIME_WATCH):
            for wc, since in s.downtime_open.items():
                self._watch_once(("downtime", wc, since.isoformat()), self._downtime_watcher(wc, since))

    async def _watch_release(self) -> None:
        s = self.s
        since = s.released_at or workflow.now()
        await self._escalate(
            "release_not_started",
            since,
            s.policy.release_start_sla,
            lambda: self.s.state is not OrderState.RELEASED,
            f"order {s.order.number} released but not started",
        )

    async def _watch_hold(self, hold_key: str | None, since: datetime) -> None:
        s = self.s
        await self._escalate(
            "hold_unresolved",
            since,
            s.policy.hold_sla,
            lambda: self.s.hold is None or self.s.hold.event_id != hold_key,
            f"quality hold on order {s.order.number} unresolved",
        )

    async def _escalate(
        self, topic: str, since: datetime, first: timedelta, done: Callable[[], bool], text: str
    ) -> None:
        """Alert when `done()` is still false `first` after `since`, escalate `escalate_after` later."""

        async def alert(level: int) -> None:
            self._sla_alert(
                topic, level, f"{text} (open since {since:%Y-%m-%d %H:%M:%S} UTC)", contract.time_key(since)
            )

        await escalate_until(done, first, self.s.policy.escalate_after, alert, since=since)

    def _sla_alert(self, topic: str, level: int, text: str, key: str) -> None:
        now = workflow.now()
        message = f"SLA {topic}, level {level}: {text}"
        self.s.alerts.append(AlertRecord(topic=topic, level=level, at=now, message=message))
        self.logic.note(now, "sla", message)
        self.logic.alert(
            now,
            contract.sla_alert_key(topic, key, level),
            "critical" if level > 1 else "warning",
            topic,
            message,
            level,
        )
        self._publish()

    def _overdue_candidates(self) -> list[Step]:
        return [
            st
            for st in self.s.steps
            if st.kind.posts_to_erp and not st.finished and st.started_at is not None and st.sla_level < 2
        ]

    async def _watch_postings(self) -> None:
        """One periodic check while ERP steps are open: no timer per posting."""
        policy = self.s.policy
        interval = max(policy.posting_sla / 4, timedelta(seconds=1))
        while True:
            await workflow.wait_condition(lambda: bool(self._overdue_candidates()))
            await workflow.sleep(interval)
            now = workflow.now()
            for step in self._overdue_candidates():
                assert step.started_at is not None
                due = step.started_at + policy.posting_sla + (policy.escalate_after if step.sla_level else timedelta(0))
                if now >= due:
                    step.sla_level += 1
                    self._sla_alert(
                        "posting_overdue",
                        step.sla_level,
                        f"{step.kind.value} ({step.id}) for order {self.s.order.number} not posted",
                        step.id,
                    )

    async def _watch_downtime(self, work_center: str, since: datetime, event: PlantEvent | None) -> None:
        """A downtime still open after the plant's `long_downtime`: alert now and request maintenance."""
        s = self.s
        remaining = max(since + s.policy.long_downtime - workflow.now(), timedelta(seconds=1))
        try:
            await workflow.wait_condition(lambda: self.s.downtime_open.get(work_center) != since, timeout=remaining)
            return
        except TimeoutError:
            pass
        now = workflow.now()
        minutes = int((now - since).total_seconds() // 60)
        reason = event.reason if event is not None and event.reason else "no reason given"
        message = f"work center {work_center} down for {minutes} min ({reason})"
        self.s.alerts.append(AlertRecord(topic="downtime", level=1, at=now, message=message))
        key = contract.downtime_key(work_center, since)
        self.logic.alert(now, key, "critical", "downtime", message)
        if self.s.state not in END_STATES:
            equipment = (event.equipment if event is not None else None) or work_center
            self.logic.request_maintenance(
                now,
                key,
                equipment,
                work_center,
                2,
                f"long downtime: {message}",
                event.source if event is not None else "plantbridge",
            )
        self._publish()

    async def _flush_aggregates(self) -> None:
        """Post buffered quantities once they are `aggregate_every` old (operation end posts them sooner)."""
        every = self.s.policy.aggregate_every
        while True:
            await workflow.wait_condition(lambda: self.s.has_buffered and not self._draining)
            try:
                await workflow.wait_condition(lambda: not self.s.has_buffered, timeout=every)
            except TimeoutError:
                if self._cancel is None and self.s.state not in END_STATES:
                    self.logic.flush(workflow.now())
                    self._publish()
