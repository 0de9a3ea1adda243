"""Which saga steps run as Temporal *local* activities, and with what timeouts (issue 17).

A regular activity costs the Temporal server three history events (scheduled, started, completed), a
task-queue round trip, and mostly a workflow task of its own to take its result. A local activity runs
in the worker that runs the workflow task, as part of it: one marker event records its result, no task
queue, no workflow task of its own. What it gives up:

- no heartbeat timeout: an attempt is bounded by its start-to-close only (and a dead worker's by the
  workflow task's timeout);
- the workflow task stays open while the call runs: the order's other messages (updates, signals,
  queries) wait for it (the SDK completes and reopens the task every ~8 s of a slow call); so only
  calls bounded to seconds belong here, and a backoff longer than `LOCAL_RETRY_THRESHOLD` waits on a
  workflow timer instead, so an outage does not hold the order while it lasts;
- no pending activity in the Temporal UI (attempts and errors are in the worker's log): the saga's
  current details list the steps in progress with the time they started (`details.py`);
- no task-queue flow control: they run under the worker's `max_concurrent_local_activities`.

So the plant-system steps run local: MES (dispatch, change, hold, release, acknowledgements), QMS
(inspection lots), WMS (staging, blocks, transfers, shipment) and the notifier (alerts). Each is one
look-up and one POST to a system on the plant's own network (`workers/timeouts.py`: a REST plant
system's worst case is 2 requests; the reference systems answer in milliseconds), idempotent by its
external key like every step, and they are the frequent ones: in the bench's order, 6 of its 11 steps.
ERP postings stay regular activities: they can take minutes (SAP OData's worst case is 5 requests, Odoo's
8), a hung attempt is found by the heartbeat timeout and the ledger lease it renews, supervisors watch
them as pending activities, and the task queue spreads a busy ERP's load. Compensations (a cancellation's
recall, staging release, unblock) stay regular too: rare, and a cancellation under way is watched in the UI.
"""

from __future__ import annotations

from datetime import timedelta

from plantbridge.canonical.commands import StepKind
from plantbridge.canonical.policy import PlantPolicy

LOCAL_SYSTEMS: frozenset[str] = frozenset({"mes", "qms", "wms", "notify"})
LOCAL_KINDS: frozenset[StepKind] = frozenset(kind for kind in StepKind if kind.system in LOCAL_SYSTEMS)

# A local step's attempt ends after this (or the plant's `activity_timeout`, when shorter). The plant's
# connector worst case for the step's system must stay below it: the worker checks it at start
# (`workers/timeouts.py`; a REST plant system's default is 2 x 15 s). Calls in flight are bounded by the
# connector's own timeouts first; this is the backstop that ends a call that never answers.
LOCAL_STEP_TIMEOUT = timedelta(seconds=45)
# Retry backoffs up to this wait inside the workflow task; a longer one waits on a workflow timer.
LOCAL_RETRY_THRESHOLD = timedelta(seconds=2)


def runs_local(kind: StepKind, *, compensation: bool = False) -> bool:
    """Whether a step of `kind` runs as a local activity (a compensation never does)."""
    return kind in LOCAL_KINDS and not compensation


def local_step_timeout(policy: PlantPolicy) -> timedelta:
    """The start-to-close of a local step's attempt."""
    return min(policy.activity_timeout, LOCAL_STEP_TIMEOUT)
