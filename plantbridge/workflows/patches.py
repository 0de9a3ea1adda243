"""Patch ids: every change to running workflow code goes through a patch (`RunPatches.on(<id>)`).

A running order replays its history on every worker; code that would issue different commands for
an old history checks its patch first (`tests/test_replay.py` replays recorded histories). Listed in
docs/ARCHITECTURE.md §8 with when each can go.

The epoch (issue 17): each `workflow.patched(<id>)` records a marker and an upsert of
`TemporalChangeVersion` (a visibility write) in the order's history. A `ProductionOrder` run started by
code that knows the epoch consults `EPOCH` once, in its first workflow task (`@workflow.init`); when
set, every id in `EPOCH_COVERS` (the ids that existed before it) is on without a marker. A run started
before the epoch replays its first task without the marker, so `EPOCH` is False for its whole run
(`workflow.patched` memoizes per run) and each id goes to `workflow.patched` as before. An id added
after the epoch is not in `EPOCH_COVERS` and always goes to `workflow.patched`.

Deprecating one: once no workflow started before the patch can still be running (all such orders
posted or cancelled, and their histories past retention), replace `workflow.patched(X)` with
`workflow.deprecate_patch(X)` and keep only the new branch; once no history carries the marker any
more, delete the call and the id.
"""

from __future__ import annotations

from typing import Final

from temporalio import workflow

# ProductionOrder: a maintenance request starts a `MaintenanceRequest` child workflow (before: an
# ERP notification step and an alert in the order's own lanes).
MAINTENANCE_CHILD: Final = "maintenance-child-workflow"
# ProductionOrder: a downtime still open after `long_downtime` is alerted while it lasts and
# requests maintenance (before: one alert when it ended).
DOWNTIME_WATCH: Final = "downtime-watch"
# ProductionOrder: the business acknowledgement goes to MES sources only, once per event after its
# last ERP posting (before: one per posting, to any source).
ACK_PER_EVENT: Final = "acknowledge-once-per-event"
# ProductionOrder: one SLA watcher per watched thing, even when a handler ran before `run`.
SINGLE_WATCHERS: Final = "single-sla-watchers"
# MaintenanceRequest: a refused step opens an exception (id, `by`, override, audit) resolved by
# `retry_step` / `skip_step` / `override_step` (before: a bare decision, no identity or audit).
MAINTENANCE_EXCEPTIONS: Final = "maintenance-exceptions"

# ProductionOrder: `submit_event` waits for the event's postings at most the plant's `ack_wait`, and
# not at all behind a parked posting (before: without a bound, so ten events queued behind an open
# exception filled Temporal's limit of in-flight updates and the order refused every further event).
BOUNDED_ACK: Final = "bounded-ack-wait"

# MaintenanceRequest: `complete_maintenance` is audited with who completed it and their note
# (before: only in the request's state).
MAINTENANCE_COMPLETION_AUDIT: Final = "maintenance-completion-audit"
# ProductionOrder: `order_changed` reads the order from the ERP (`erp.read_order`) and acts on the
# difference: quantities, dates, operations, components, TECO, deletion flag/lock (issue 14).
# Before: a released saga ignored every ERP change.
ORDER_CHANGES: Final = "order-changes"
# ProductionOrder: a cancellation requested through Temporal (the UI's "Request Cancellation",
# `handle.cancel()`) runs the compensations and audit of `cancel_order` (actor `temporal-ui`) and ends
# the order `cancelled`; compensations run shielded from a further cancellation. Before: the run ended
# "Canceled" with nothing undone and nothing audited.
TEMPORAL_CANCEL: Final = "temporal-cancel-compensates"
# ProductionOrder: the `plant_event` signal applies events only when the plant's policy says
# `event_signals: true`; otherwise it refuses them (noted, counted, audited). Plant events enter
# through the gateway's `submit_event` update after authentication and ownership checks.
EVENT_SIGNAL_CLOSED: Final = "plant-event-signal-closed"
# ProductionOrder: `order_released` carries the order key (`OrderReleaseNotice`) and the saga reads
# the order through `erp.read_order`; a whole `ProductionOrder` (older senders) is read back too.
RELEASE_READS_ORDER: Final = "release-reads-order"
# AuditArchive: each inbox message that waited past the TTL is alerted through the plant's notifier
# (the `notify.alert` activity, like the saga's alerts). Before: an error log line and an audit record.
DEAD_LETTER_NOTIFY: Final = "dead-letter-notify"

# ProductionOrder (issue 17): the audit notes waiting when the pump runs are written together, by one
# local activity `store.audit_batch` (before: one `store.audit` activity per note).
AUDIT_BATCH: Final = "audit-notes-batched"
# ProductionOrder (issue 17): one business acknowledgement for all the ERP postings one event planned
# (a final confirmation with its buffered partials and the consumption it flushed), naming every event
# they carry, each with its own documents (before: one per event, after its last posting).
ACK_PER_TRIGGER: Final = "acknowledge-once-per-trigger"
# ProductionOrder (issue 17): an activity's input carries of the order what its step needs: the
# components only for MES dispatch / change and WMS staging (before: the whole order in every input).
STEP_INPUTS: Final = "step-inputs-trimmed"
# ProductionOrder (issue 17): finished steps nothing reads again (acknowledgements, alerts, ...) beyond
# the newest 100 are dropped as the order runs (before: kept until continue-as-new).
FINISHED_STEPS_BOUNDED: Final = "finished-steps-bounded"
# ProductionOrder: `release_hold` on an order that is cancelled or being cancelled is noted and ignored
# (before: it disposed the hold and asked for a transition out of `cancelled`, failing every workflow
# task, so the order was stuck; the gateway's API refuses it with 409 since the same change).
RELEASE_HOLD_ENDING: Final = "release-hold-ignored-when-ending"

# ProductionOrder: with the plant policy `unknown_material: exception`, consumption of a material not
# among the order's components is held as an exception (category `unknown_material`) before it is
# posted. Before: posted like any consumption (still so with `allow`, the default).
UNKNOWN_MATERIAL: Final = "unknown-material-exception"

# ProductionOrder (issue 17): the plant-system steps (MES, QMS, WMS, notifier; not compensations) run as
# local activities, in the workflow task (`workflows/local_steps.py` says which and why). Before: every
# step was a regular activity (3 history events, a task-queue round trip and a workflow task each).
LOCAL_PLANT_STEPS: Final = "local-plant-system-steps"

ALL: Final[tuple[str, ...]] = (
    MAINTENANCE_CHILD,
    DOWNTIME_WATCH,
    ACK_PER_EVENT,
    SINGLE_WATCHERS,
    MAINTENANCE_EXCEPTIONS,
    BOUNDED_ACK,
    MAINTENANCE_COMPLETION_AUDIT,
    ORDER_CHANGES,
    TEMPORAL_CANCEL,
    EVENT_SIGNAL_CLOSED,
    RELEASE_READS_ORDER,
    DEAD_LETTER_NOTIFY,
    AUDIT_BATCH,
    ACK_PER_TRIGGER,
    STEP_INPUTS,
    FINISHED_STEPS_BOUNDED,
    RELEASE_HOLD_ENDING,
    UNKNOWN_MATERIAL,
    LOCAL_PLANT_STEPS,
)

# The patch epoch (issue 17): a `ProductionOrder` run that consulted it at its start takes every id in
# `EPOCH_COVERS` as set without a marker (before: one marker and one `TemporalChangeVersion` upsert per
# id the order consulted: 5 + 5 of a 20-event order's history).
EPOCH: Final = "epoch-2026-12"
# The ids that existed at the epoch, spelled out: an id added after it must not join this list (its
# old branch is what runs started before it, epoch or not, replay), so it goes to `workflow.patched`.
EPOCH_COVERS: Final[frozenset[str]] = frozenset({
    MAINTENANCE_CHILD,
    DOWNTIME_WATCH,
    ACK_PER_EVENT,
    SINGLE_WATCHERS,
    MAINTENANCE_EXCEPTIONS,
    BOUNDED_ACK,
    MAINTENANCE_COMPLETION_AUDIT,
    ORDER_CHANGES,
    TEMPORAL_CANCEL,
    EVENT_SIGNAL_CLOSED,
    RELEASE_READS_ORDER,
    DEAD_LETTER_NOTIFY,
    AUDIT_BATCH,
    ACK_PER_TRIGGER,
    STEP_INPUTS,
    FINISHED_STEPS_BOUNDED,
    RELEASE_HOLD_ENDING,
    UNKNOWN_MATERIAL,
})


class RunPatches:
    """The patches as one workflow run sees them: held by the workflow instance, never module state
    (one worker runs many workflows, each with its own epoch)."""

    __slots__ = ("_epoch",)

    def __init__(self, *, epoch: bool) -> None:
        self._epoch = epoch

    @classmethod
    def at_start(cls) -> RunPatches:
        """Consult the epoch: in the run's first workflow task only (its `@workflow.init`), the same point
        in every replay. A run whose first task was recorded without the epoch's marker replays it False
        (and `workflow.patched` keeps that answer for the run), so it never takes the epoch later."""
        return cls(epoch=workflow.patched(EPOCH))

    @property
    def epoch(self) -> bool:
        return self._epoch

    def on(self, patch_id: str) -> bool:
        """Whether this run takes the patched branch of `patch_id`: without a marker for an id the epoch
        covers (when this run has the epoch), else `workflow.patched(patch_id)` as ever."""
        if self._epoch and patch_id in EPOCH_COVERS:
            return True
        return workflow.patched(patch_id)


# Workflows that do not consult the epoch (`MaintenanceRequest`, `AuditArchive`: one or two patches a
# run, so the epoch's own marker would save little or nothing): every id goes to `workflow.patched`.
NO_EPOCH: Final = RunPatches(epoch=False)
