"""The worker's workflow runner: the SDK's sandbox with plantbridge's passthrough modules, or no sandbox.

For every payload sequence it encodes or decodes in an activation (several per activation: three
visitor passes each way), the SDK asks the workflow instance for the payload's serialization
context, which the sandbox answers by running code inside it (an `exec` with its importer applied):
about a quarter of the worker's CPU in the bench's profile (issue 17). When the data converter does
not depend on the context (no component changes under `with_context`, no external storage: true of
plantbridge's pydantic converter with or without the encryption codec), every context gives the same
converter, so `ContextFreeSandboxedRunner` answers outside the sandbox. The workflow code itself
still runs in the sandbox.

`PLANTBRIDGE_WORKFLOW_SANDBOX=off` (Settings.workflow_sandbox) runs workflows without the sandbox:
less CPU per activation; the sandbox's run-time guard against non-deterministic calls is gone (the
replay tests and the test suite, which always run sandboxed, still guard the workflow code).
"""

from __future__ import annotations

from dataclasses import dataclass

import temporalio.workflow
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    SerializationContext,
    StorageDriverStoreContext,
    StorageDriverWorkflowInfo,
    WorkflowSerializationContext,
)
from temporalio.worker import (
    UnsandboxedWorkflowRunner,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from plantbridge.workers.settings import Settings

# Pure, deterministic modules the sandbox takes as they are (imported once per process), instead of
# importing them again for every workflow run it creates: the canonical models, the contract and the
# workflow code itself (no module state; time, randomness and I/O go through `workflow.*`). Measured
# with `python -m plantbridge_devtools.saga_profile` (issue 17): see docs/ARCHITECTURE.md §6.
PASSTHROUGH_MODULES = ("plantbridge.contract", "plantbridge.canonical", "plantbridge.workflows")

_PROBES: tuple[SerializationContext, ...] = (
    WorkflowSerializationContext(namespace="probe", workflow_id="probe"),
    ActivitySerializationContext(namespace="probe", workflow_id="probe", workflow_type="probe",
                                 activity_type="probe", activity_id="1", activity_task_queue="probe", is_local=False),
)


def context_free(converter: DataConverter) -> bool:
    """True when the converter is the same under every serialization context and stores nothing externally."""
    return converter.external_storage is None and all(converter.with_context(p) is converter for p in _PROBES)


class _ContextFreeInstance(WorkflowInstance):
    """A sandboxed instance whose serialization and store contexts are answered outside the sandbox."""

    def __init__(self, inner: WorkflowInstance) -> None:
        self._inner = inner

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        return self._inner.activate(act)

    def get_serialization_context(self, command_info: object) -> SerializationContext | None:
        return None  # the converter is the same under every context (checked by `context_free`)

    def get_external_store_context(self, command_info: object) -> StorageDriverStoreContext:
        # Only consulted by external storage, which a context-free converter has none of.
        info = self._inner.get_info()
        return StorageDriverStoreContext(target=StorageDriverWorkflowInfo(
            id=info.workflow_id, run_id=info.run_id, type=info.workflow_type, namespace=info.namespace))

    def get_info(self) -> temporalio.workflow.Info:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()


@dataclass(frozen=True)
class ContextFreeSandboxedRunner(SandboxedWorkflowRunner):
    """The sandbox, for a data converter that `context_free` accepts. A `SandboxedWorkflowRunner`, so
    plugins (e.g. OpenTelemetry's passthrough) and `dataclasses.replace` treat it as the sandbox."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _ContextFreeInstance(super().create_instance(det))


def workflow_runner_for(converter: DataConverter, settings: Settings | None = None) -> WorkflowRunner:
    """The runner for a worker whose client converts with `converter`: the sandbox unless the settings
    say `workflow_sandbox: off` (no settings, e.g. tests and `plantbridge dev`'s defaults: the sandbox)."""
    if settings is not None and settings.workflow_sandbox == "off":
        return UnsandboxedWorkflowRunner()
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    if context_free(converter):
        return ContextFreeSandboxedRunner(restrictions=restrictions)
    return SandboxedWorkflowRunner(restrictions=restrictions)
