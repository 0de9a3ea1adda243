"""The order size plantbridge supports: 3,000 components, from a LOIPRO IDoc to posted (issue 17).

The real S/4HANA IDoc (tests/fixtures/idoc/LOIPRO05_Original.xml: 3 operations, 12 components) is
grown programmatically to 3,000 backflushed components (1,000 per operation, each a copy of the
IDoc's own E1RESBL segment with its material, item and reservation numbers changed): ~3.5 MB of XML.
It goes through the gateway's IDoc route, the saga dispatches and stages it, each operation is finally
confirmed (each confirmation backflushing its 1,000 components) and the order is posted. Every run's
history is read back: no payload near Temporal's 2 MB limit, and the activity inputs of steps that do
not need the components (ERP postings) do not carry them; the plant systems' steps are local
activities, whose inputs (dispatch and staging carry the components) never reach the server.
"""

from __future__ import annotations

import gc
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from plantbridge.client import order_state
from plantbridge.connectors.memory import MemoryStore
from plantbridge.gateway.idoc_loipro import parse_loipro
from plantbridge_devtools.bench_history import local_activity_type
from plantbridge_devtools.saga_profile import _payload_size
from tests.gateway.conftest import Gateway, gateway, wire  # noqa: F401 - the gateway fixture
from tests.support import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.heavy]

IDOC = Path(__file__).parent.parent / "fixtures" / "idoc" / "LOIPRO05_Original.xml"
COMPONENTS = 3000
TEMPORAL_PAYLOAD_LIMIT = 2 * 1024 * 1024
NEEDS_COMPONENTS = {"mes.dispatch", "mes.change_order", "wms.stage", "wms.release_staging"}


def grown_idoc(order: str, components: int) -> bytes:
    """The real IDoc with `components` copies of its first component segment, spread over its operations."""
    xml = IDOC.read_text()
    segments = re.findall(r"[ \t]*<E1RESBL SEGMENT=\"1\">.*?</E1RESBL>\n", xml, re.S)
    template = segments[0]
    for seg in segments:
        xml = xml.replace(seg, "", 1)
    operations = re.findall(r"<E1AFVOL SEGMENT=\"1\">", xml)
    per_op = components // len(operations)
    parts = xml.split('<E1AFVOL SEGMENT="1">')
    for i in range(1, len(parts)):
        comps = []
        for j in range(per_op):
            n = (i - 1) * per_op + j + 1
            seg = re.sub(r"<MATNR_LONG>[^<]*</MATNR_LONG>", f"<MATNR_LONG>RM-{n:05d}</MATNR_LONG>", template)
            seg = re.sub(r"<POSNR>[^<]*</POSNR>", f"<POSNR>{n % 10000:04d}</POSNR>", seg)
            seg = re.sub(r"<RSPOS>[^<]*</RSPOS>", f"<RSPOS>{n % 10000:04d}</RSPOS>", seg)
            seg = seg.replace("</E1RESBL>", "<RGEKZ>X</RGEKZ></E1RESBL>")
            comps.append(seg)
        parts[i] = "\n" + "".join(comps) + parts[i]
    xml = '<E1AFVOL SEGMENT="1">'.join(parts)
    return xml.replace("<AUFNR>1895938</AUFNR>", f"<AUFNR>{order}</AUFNR>").encode()


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    async with httpx.AsyncClient(base_url=gateway.url, timeout=120) as c:
        yield c


async def histories(client: Client, workflow_id: str) -> list[Any]:
    events: list[Any] = []
    async for wf in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        events.extend((await client.get_workflow_handle(workflow_id, run_id=wf.run_id).fetch_history()).events)
    return events


@pytest.fixture
def forget_order(reference: MemoryStore) -> Iterator[list[str]]:
    """Drop what the session's in-memory systems kept of the big order (postings with 3,000 goods movements,
    the order itself) when the test ends: the session worker shares this process, and a heap grown by
    megabytes of test data lengthens every later garbage collection inside a workflow activation."""
    numbers: list[str] = []
    yield numbers
    reference.postings[:] = [c for c in reference.postings if c.order not in numbers]
    reference.log[:] = [e for e in reference.log if e.order not in numbers]
    for number in numbers:
        reference.orders.pop(number, None)
    gc.collect()


async def test_order_of_3000_components_from_idoc_to_posted(gateway: Gateway, http: httpx.AsyncClient,  # noqa: F811
                                                            client: Client, forget_order: list[str]) -> None:
    number = str(8_100_000 + uuid.uuid4().int % 90_000)
    forget_order.append(number)
    xml = grown_idoc(number, COMPONENTS)
    assert len(xml) > 1024 * 1024  # larger than the gateway's general body limit: the IDoc route has its own
    gateway.deps.idoc_plant_map["HZ001"] = "1000"
    try:
        r = await http.post("/v1/erp/sap/idoc", content=xml,
                            headers={**gateway.auth("erp1000"), "Content-Type": "application/xml"})
    finally:
        gateway.deps.idoc_plant_map.clear()
    assert r.status_code == 200, r.text
    assert r.json()["orders"][0]["status"] == "started"
    [order] = parse_loipro(xml, {"HZ001": "1000"})
    assert len(order.components) == COMPONENTS and all(c.backflush for c in order.components)

    for op in order.operations:
        body = wire(order, "operation_confirmed", operation=op.number, final=True,
                    yield_qty={"quantity": str(op.planned_qty.quantity), "uom": op.planned_qty.uom})
        r = await http.post("/v1/plant/events", json=body, headers=gateway.auth("mes1000"))
        assert r.status_code in (200, 202), r.text
        assert r.json()["status"] == "accepted"

    async def posted() -> bool:  # the short `state` query: `summary` would answer with the whole 1.2 MB state
        return (await order_state(client, order.plant, order.number)).state.value == "posted"

    await eventually(posted, timeout=180)

    events = await histories(client, f"production-order:{order.plant}:{order.number}")
    sizes = [(_payload_size(getattr(ev, desc.name)), EventType.Name(ev.event_type))
             for ev in events for desc, _ in ev.ListFields() if desc.name.endswith("_attributes")]
    largest, what = max(sizes)
    inputs: dict[str, int] = {}
    local: dict[str, int] = {}  # plant-system steps: local activities, only their results in the history
    backflushed = 0
    for ev in events:
        if ev.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            attrs_m = ev.marker_recorded_event_attributes
            if kind := local_activity_type(attrs_m.details):
                local[kind] = max(local.get(kind, 0), _payload_size(attrs_m))
        if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = ev.activity_task_scheduled_event_attributes
            kind = attrs.activity_type.name
            inputs[kind] = max(inputs.get(kind, 0), _payload_size(attrs))
            request = json.loads(attrs.input.payloads[0].data)
            if kind.split(".")[0] in ("erp", "mes", "qms", "wms", "notify"):  # a step: what of the order it carries
                carried = len(request["order"]["components"])
                assert carried == (COMPONENTS if kind in NEEDS_COMPONENTS else 0), (kind, carried)
                backflushed += len(request["command"].get("goods_movements", []))
    history_bytes = sum(ev.ByteSize() for ev in events)
    print(f"\n{COMPONENTS} components: IDoc {len(xml)} bytes, {len(events)} history events, {history_bytes} "
          f"history bytes, largest payload {largest} ({what}), largest activity inputs {inputs}, "
          f"largest local activity markers {local}")
    assert backflushed == COMPONENTS  # each final confirmation issued its operation's 1,000 components
    assert largest < TEMPORAL_PAYLOAD_LIMIT * 0.75, (largest, what)
    assert inputs["erp.goods_receipt"] < 20_000
    assert not [kind for kind in inputs if kind.split(".")[0] in ("mes", "qms", "wms", "notify")], inputs
    assert {"mes.dispatch", "wms.stage", "mes.acknowledge"} <= set(local), local
    assert max(local.values()) < 20_000, local  # the 0.6 MB dispatch and staging inputs never reach the server
