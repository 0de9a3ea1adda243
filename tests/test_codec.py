"""Encryption at rest: an order run with the payload codec leaves only `binary/encrypted` payloads in
Temporal's history (read raw, by a client without the codec); search attributes stay readable; the
codec server decodes them for a supervisor key only; rotated keyrings still decrypt old payloads."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client
from temporalio.worker import Worker

from plantbridge.canonical import OrderState
from plantbridge.client import connect, current_details, order_summary, start_order, submit_event
from plantbridge.connectors.memory import MemoryRegistry, MemoryStore
from plantbridge.security.codec import (
    ENCODING,
    KEY_ID_META,
    CodecError,
    CodecKeyError,
    EncryptionCodec,
    codec_from_env,
    keys_from_env,
    new_key,
    parse_keys,
)
from plantbridge.security.codec_server import create_codec_app
from plantbridge.store import ApiKeys, Database
from plantbridge.workers.worker import build_worker
from plantbridge.workflows import search_attributes as sa
from plantbridge_devtools.temporal_server import DevServer, free_port
from tests.conftest import event, fast_policy, new_order, qty

QUEUE = "plantbridge-codec-test"
K1 = secrets.token_bytes(32)
K2 = secrets.token_bytes(32)
UI = "http://localhost:8233"


@pytest.fixture(scope="module")
async def sealed(temporal_server: DevServer, reference: MemoryStore, db: Database) -> AsyncIterator[Client]:
    """A client and a worker of their own, both with the codec (key k1), on their own task queue."""
    client = await connect(temporal_server.address, codec=EncryptionCodec({"k1": K1}))
    worker: Worker = build_worker(client, QUEUE, MemoryRegistry(reference), db)
    async with worker:
        yield client


@pytest.fixture(scope="module")
async def raw(temporal_server: DevServer) -> Client:
    return await connect(temporal_server.address, codec=None)


def payloads_in(msg: Message, path: str = "") -> Iterator[tuple[str, Payload]]:
    """Every Payload in a proto message, with where it sits; search attributes are not payloads we seal."""
    for field, value in msg.ListFields():
        where = f"{path}.{field.name}"
        if field.name == "search_attributes" or field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        else:
            items = [value] if isinstance(value, Message) else list(value)
        for item in items:
            if isinstance(item, Payload):
                yield where, item
            elif isinstance(item, Message):
                yield from payloads_in(item, where)


async def test_history_holds_only_encrypted_payloads(sealed: Client, raw: Client, db: Database) -> None:
    order = new_order()
    handle = await start_order(sealed, order, fast_policy(task_queue=QUEUE))

    async def send(ev_type: str, **fields: object) -> None:
        ack = await submit_event(sealed, event(order, ev_type, **fields))
        assert ack.status == "accepted", ack

    await send("operation_started", operation="0010", work_center="ASSY-01")
    ev = event(order, "operation_confirmed", operation="0010", yield_qty=qty(100), final=True)
    assert (await submit_event(sealed, ev)).status == "accepted"
    dup = await submit_event(sealed, ev)  # a refusal: its failure message is encoded too, and decodes
    assert dup.status == "duplicate" and dup.reason
    await send("operation_started", operation="0020", work_center="TEST-01")
    assert "FG-1000" in await current_details(sealed, order.plant, order.number)
    await send("operation_confirmed", operation="0020", yield_qty=qty(100), final=True)
    result = await handle.result()
    assert result.state is OrderState.POSTED

    history = await raw.get_workflow_handle(handle.id).fetch_history()
    found = [(where, p) for e in history.events for where, p in payloads_in(e)]
    assert len(found) > 10, found
    clear = [order.number, order.material, "RM-STEEL", "ASSY-01", "Pump housing", ev.event_id]
    for where, p in found:
        assert not any(s.encode() in p.data for s in clear), where
        if where.startswith(".marker_recorded_event_attributes"):
            continue  # patch markers: Temporal's own record of a patch id (`workflow.patched`), no order data
        assert p.metadata["encoding"] == ENCODING and p.metadata[KEY_ID_META] == b"k1", where
    failures = [e for e in history.events if e.HasField("workflow_execution_update_completed_event_attributes")
                and e.workflow_execution_update_completed_event_attributes.outcome.HasField("failure")]
    for e in failures:  # the refusal's message sits in an encoded attribute, not in clear
        failure = e.workflow_execution_update_completed_event_attributes.outcome.failure
        assert failure.message == "Encoded failure" and failure.encoded_attributes.metadata["encoding"] == ENCODING

    desc = await raw.get_workflow_handle(handle.id).describe()  # search attributes stay readable
    assert desc.typed_search_attributes.get(sa.ORDER_NUMBER) == order.number
    assert desc.typed_search_attributes.get(sa.PLANT) == order.plant
    with pytest.raises(Exception):  # noqa: B017 - a reader without the codec gets no order out of a query
        await order_summary(raw, order.plant, order.number)

    # The codec server decodes the history's payloads for a supervisor, with the keyring rotated since.
    keys = ApiKeys(db)
    _, supervisor = await keys.create(f"codec-sup-{secrets.token_hex(3)}", "supervisor", ["*"])
    _, edge = await keys.create(f"codec-edge-{secrets.token_hex(3)}", "edge", ["1000"])
    rotated = EncryptionCodec({"k2": K2, "k1": K1})
    found = [(where, p) for where, p in found if p.metadata["encoding"] == ENCODING]
    body = json_format.MessageToJson(Payloads(payloads=[p for _, p in found]))
    async with codec_server(rotated, keys, path_secret="stack-secret-123") as url, httpx.AsyncClient() as http:
        h = {"Content-Type": "application/json", "X-Namespace": "default"}
        r = await http.post(f"{url}/decode", content=body, headers=h)
        assert r.status_code == 401 and "WWW-Authenticate" in r.headers
        assert order.number not in r.text
        r = await http.post(f"{url}/decode", content=body, headers={**h, "Authorization": "Bearer pbk_x_y"})
        assert r.status_code == 401
        r = await http.post(f"{url}/decode", content=body, headers={**h, "Authorization": f"Bearer {edge}"})
        assert r.status_code == 403
        r = await http.post(f"{url}/wrong-secret/decode", content=body, headers=h)
        assert r.status_code == 404
        r = await http.post(f"{url}/decode", content=body, headers={**h, "Authorization": f"Bearer {supervisor}"})
        assert r.status_code == 200, r.text
        decoded = json_format.Parse(r.text, Payloads()).payloads
        assert len(decoded) == len(found)
        assert all(p.metadata["encoding"] == b"json/plain" for p in decoded)
        assert any(order.number.encode() in p.data for p in decoded)
        assert any(b"RM-STEEL" in p.data for p in decoded)
        r2 = await http.post(f"{url}/stack-secret-123/decode", content=body, headers=h)  # the dev UI's way in
        assert r2.status_code == 200 and json_format.Parse(r2.text, Payloads()).payloads == decoded

        # /encode seals with the newest key (k2); the old keyring alone cannot open it.
        r = await http.post(f"{url}/encode", headers={**h, "Authorization": f"Bearer {supervisor}"},
                            content=json_format.MessageToJson(Payloads(payloads=decoded[:1])))
        assert r.status_code == 200
        [enc] = json_format.Parse(r.text, Payloads()).payloads
        assert enc.metadata[KEY_ID_META] == b"k2" and order.number.encode() not in enc.data

        # CORS: the UI's origin is allowed (preflight and answer), another origin is not.
        pre = await http.options(f"{url}/decode", headers={
            "Origin": UI, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace"})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == UI
        r = await http.post(f"{url}/decode", content=body, headers={**h, "Origin": UI,
                                                                   "Authorization": f"Bearer {supervisor}"})
        assert r.headers["access-control-allow-origin"] == UI
        pre = await http.options(f"{url}/decode", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in pre.headers


class codec_server:  # used as `async with codec_server(...) as url`
    """The codec server over real HTTP (uvicorn on a free port, in the test process)."""

    def __init__(self, codec: EncryptionCodec, keys: ApiKeys, *, path_secret: str | None = None) -> None:
        app = create_codec_app(codec, keys, ui_origins=[UI], path_secret=path_secret)
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]

    async def __aenter__(self) -> str:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.02)
            if self.task.done():
                self.task.result()
        return f"http://127.0.0.1:{self.port}"

    async def __aexit__(self, *_: object) -> None:
        self.server.should_exit = True
        await self.task


async def test_rotation_new_key_encrypts_old_keys_decrypt() -> None:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"order": "4000001"}')
    old = EncryptionCodec({"k1": K1})
    [sealed_k1] = await old.encode([plain])
    rotated = EncryptionCodec(parse_keys(f"k2:{base64.b64encode(K2).decode()},k1:{base64.b64encode(K1).decode()}"))
    assert rotated.current == "k2"
    assert await rotated.decode([sealed_k1]) == [plain]  # old payloads still open
    [sealed_k2] = await rotated.encode([plain])
    assert sealed_k2.metadata[KEY_ID_META] == b"k2" and sealed_k1.data != sealed_k2.data
    with pytest.raises(CodecError, match="'k2'"):  # a process still on the old keyring says which key it lacks
        await old.decode([sealed_k2])
    tampered = Payload(metadata=sealed_k1.metadata, data=sealed_k1.data[:-1] + bytes([sealed_k1.data[-1] ^ 1]))
    with pytest.raises(CodecError, match="does not decrypt"):
        await rotated.decode([tampered])
    relabelled = Payload(metadata={**sealed_k1.metadata, KEY_ID_META: b"k2"}, data=sealed_k1.data)
    with pytest.raises(CodecError):  # the key id is bound into the ciphertext
        await rotated.decode([relabelled])
    assert await rotated.decode([plain]) == [plain]  # never-encrypted payloads (older histories) pass


def test_keys_from_environment_or_file(tmp_path: Path) -> None:
    line1, line2 = new_key("2026-11"), new_key("2026-05")
    assert keys_from_env({}) is None and codec_from_env({}) is None
    codec = codec_from_env({"PLANTBRIDGE_CODEC_KEYS": f"{line1},{line2}"})
    assert codec is not None and codec.key_ids == ("2026-11", "2026-05")
    path = tmp_path / "codec-keys"
    path.write_text(f"# newest first\n{line2}\n{line1}\n")
    assert list(keys_from_env({"PLANTBRIDGE_CODEC_KEYS_FILE": str(path)}) or {}) == ["2026-05", "2026-11"]
    material = line1.split(":", 1)[1]
    for bad, says in [("k1:" + base64.b64encode(b"short").decode(), "32 bytes"), ("k1:%%%", "base64"),
                      (f"{line1},{line1}", "twice"), ("no-colon", "<key id>"), (" , ", "no codec key")]:
        with pytest.raises(CodecKeyError, match=says) as err:
            parse_keys(bad)
        assert material not in str(err.value)  # errors name key ids, never key material
    with pytest.raises(CodecKeyError, match="not both"):
        keys_from_env({"PLANTBRIDGE_CODEC_KEYS": line1, "PLANTBRIDGE_CODEC_KEYS_FILE": str(path)})
