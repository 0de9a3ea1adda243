"""The worker's workflow runner (workers/runner.py): the setting `PLANTBRIDGE_WORKFLOW_SANDBOX` selects
it, and the sandbox that answers serialization contexts outside itself still runs workflows sandboxed,
with plantbridge's converter (with and without the encryption codec) over a real Temporal server."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import PayloadCodec, SerializationContext, WithSerializationContext
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from plantbridge.converter import SharedPydanticPayloadConverter
from plantbridge.security.codec import EncryptionCodec, data_converter, parse_keys
from plantbridge.workers.runner import ContextFreeSandboxedRunner, context_free, workflow_runner_for
from plantbridge.workers.settings import Settings
from tests.runner_probe import Echo, RunnerProbe, stamp

KEY = "k1:" + "A" * 43 + "="


class _ContextCodec(PayloadCodec, WithSerializationContext):
    """A codec that depends on the serialization context (a new instance per context)."""

    async def encode(self, payloads: list[Payload]) -> list[Payload]:  # type: ignore[override]
        return list(payloads)

    async def decode(self, payloads: list[Payload]) -> list[Payload]:  # type: ignore[override]
        return list(payloads)

    def with_context(self, context: SerializationContext) -> _ContextCodec:
        return _ContextCodec()


def test_the_setting_selects_the_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    converter = data_converter(None)
    assert type(workflow_runner_for(converter)) is ContextFreeSandboxedRunner
    monkeypatch.setenv("PLANTBRIDGE_WORKFLOW_SANDBOX", "off")
    assert isinstance(workflow_runner_for(converter, Settings.from_env()), UnsandboxedWorkflowRunner)
    monkeypatch.setenv("PLANTBRIDGE_WORKFLOW_SANDBOX", "on")
    assert type(workflow_runner_for(converter, Settings.from_env())) is ContextFreeSandboxedRunner
    monkeypatch.setenv("PLANTBRIDGE_WORKFLOW_SANDBOX", "no")
    with pytest.raises(ValidationError):
        Settings.from_env()
    monkeypatch.delenv("PLANTBRIDGE_WORKFLOW_SANDBOX")
    assert Settings.from_env().workflow_sandbox == "on"


def test_a_context_dependent_converter_keeps_the_sdk_sandbox() -> None:
    assert context_free(data_converter(None))
    assert context_free(data_converter(EncryptionCodec(parse_keys(KEY))))
    dependent = data_converter(_ContextCodec())
    assert not context_free(dependent)
    assert type(workflow_runner_for(dependent)) is SandboxedWorkflowRunner


def test_the_payload_converter_is_built_once() -> None:
    first, second = SharedPydanticPayloadConverter(), SharedPydanticPayloadConverter()
    assert first is not second
    assert first.converters is second.converters
    assert list(first.converters) == [b"binary/null", b"binary/plain", b"json/protobuf", b"binary/protobuf",
                                      b"json/plain"]
    value = Echo(text="x", seen_by=["a"])
    assert second.from_payloads(first.to_payloads([value]), [Echo]) == [value]


@pytest.mark.parametrize("codec", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("sandbox", ["on", "off"])
async def test_workflows_run_with_the_selected_runner(client: Client, sandbox: str, codec: bool) -> None:
    converter = data_converter(EncryptionCodec(parse_keys(KEY)) if codec else None)
    own = Client(client.service_client, namespace=client.namespace, data_converter=converter)
    runner: WorkflowRunner = workflow_runner_for(own.data_converter, Settings(workflow_sandbox=sandbox))  # type: ignore[arg-type]
    queue = f"runner-{uuid.uuid4()}"
    async with Worker(own, task_queue=queue, workflows=[RunnerProbe], activities=[stamp], workflow_runner=runner):
        echo, in_sandbox = await own.execute_workflow(RunnerProbe.run, Echo(text="hi"), id=f"probe-{uuid.uuid4()}",
                                                      task_queue=queue, result_type=tuple[Echo, bool])
    assert echo == Echo(text="hi", seen_by=["activity"])
    assert in_sandbox is (sandbox == "on")
