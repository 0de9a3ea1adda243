"""Ownership per event type: a key speaks for one source kind, the plant's rules say which kinds may
send which event types; everything else is a 403 naming the rule, kept as a dead letter with the key id."""

from __future__ import annotations

import uuid

import httpx
import pytest
from temporalio.client import Client

from plantbridge.canonical.events import EventType
from plantbridge.canonical.ownership import DEFAULT_EVENT_SOURCES, event_sources
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.client import order_state, start_order
from plantbridge.store import ApiKeys, Database
from plantbridge.store.api_keys import ApiKeyError
from tests.conftest import fast_policy, new_order
from tests.gateway.conftest import Gateway, wire


async def _key(db: Database, role: str, kind: str | None, **kw: object) -> tuple[str, str]:
    info, key = await ApiKeys(db).create(f"own-{kind or role}-{uuid.uuid4().hex[:6]}", role, ["1000"],
                                         kind=kind, **kw)  # type: ignore[arg-type]
    return info.key_id, key


async def test_only_the_qms_lifts_a_hold(gateway: Gateway, http: httpx.AsyncClient, client: Client,
                                        db: Database) -> None:
    edge_id, edge = await _key(db, "edge", "edge")
    qms_id, qms = await _key(db, "plant-system", "qms")
    order = new_order()
    await start_order(client, order, fast_policy())

    async def post(key: str, event_type: str, source: str, **fields: object) -> httpx.Response:
        return await http.post("/v1/plant/events", json=wire(order, event_type, source=source, **fields),
                               headers={"Authorization": f"Bearer {key}"})

    r = await post(qms, "quality_hold", "qms-1000", reason="porosity")
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    assert (await order_state(client, order.plant, order.number)).on_hold

    # An edge key lifting the hold: refused before the saga sees it, naming the rule.
    r = await post(edge, "quality_disposition", "edge-1000", decision="release")
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == "forbidden_event_type"
    assert "event_sources.quality_disposition = [qms]" in err["message"] and "'edge'" in err["message"]
    assert "own-" not in r.text and edge not in r.text  # errors name no key
    dead = await gateway.intake.inbox.get(int(r.headers["X-Inbox-Id"]))
    assert dead is not None and dead.status == "dead" and dead.key_id == edge_id
    assert (await order_state(client, order.plant, order.number)).on_hold  # still held

    # The QMS key may not speak for another system's source.
    r = await post(qms, "quality_disposition", "mes-1000", decision="release")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_source", r.text
    assert "qms" in r.json()["error"]["message"]

    # The QMS key, as itself: accepted, and the inbox row shows which key sent it.
    r = await post(qms, "quality_disposition", "qms-1000", decision="release")
    assert r.status_code in (200, 202) and r.json()["status"] == "accepted", r.text
    row = await gateway.intake.inbox.get(int(r.headers["X-Inbox-Id"]))
    assert row is not None and row.status == "processed" and row.key_id == qms_id
    assert not (await order_state(client, order.plant, order.number)).on_hold

    # Counts from the machines are the edge's to send.
    r = await post(edge, "operation_started", "edge-1000", operation="0010", work_center="ASSY-01")
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text


async def test_keys_from_before_kinds_keep_working(gateway: Gateway, http: httpx.AsyncClient, client: Client) -> None:
    """The fixture's keys have no kind: a plant-system key counts as `mes`, an edge key as `edge`."""
    order = new_order()
    await start_order(client, order, fast_policy())
    h_mes, h_edge = gateway.auth("mes1000"), gateway.auth("edge1000")
    r = await http.post("/v1/plant/events", json=wire(order, "quality_hold", reason="burr"), headers=h_mes)
    assert r.json()["status"] == "accepted", r.text  # an MES raises a hold at the line
    r = await http.post("/v1/plant/events", json=wire(order, "quality_disposition", decision="release"),
                        headers=h_edge)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_event_type"
    r = await http.post("/v1/plant/events", json=wire(order, "quality_disposition", decision="release"),
                        headers=h_mes)
    assert r.status_code == 403 and "[qms]" in r.json()["error"]["message"]


async def test_plant_file_rules_override_the_defaults(gateway: Gateway, http: httpx.AsyncClient, client: Client,
                                                      db: Database) -> None:
    cfg = PlantConfig.model_validate({"plant": "1000", "event_sources": {"quality_hold": ["qms"]}})
    assert cfg.event_rules()[EventType.QUALITY_HOLD] == ("qms",)
    assert cfg.event_rules()[EventType.QUALITY_DISPOSITION] == DEFAULT_EVENT_SOURCES[EventType.QUALITY_DISPOSITION]
    with pytest.raises(ValueError):
        PlantConfig.model_validate({"plant": "1000", "event_sources": {"quality_hold": ["erp"]}})
    order = new_order()
    await start_order(client, order, fast_policy())
    before = gateway.deps.event_rules
    gateway.deps.event_rules = lambda plant: cfg.event_rules() if plant == "1000" else event_sources()
    try:
        r = await http.post("/v1/plant/events", json=wire(order, "quality_hold", reason="burr"),
                            headers=gateway.auth("mes1000"))
        assert r.status_code == 403 and "event_sources.quality_hold = [qms]" in r.json()["error"]["message"]
    finally:
        gateway.deps.event_rules = before


async def test_key_kinds_fit_their_role(db: Database) -> None:
    keys = ApiKeys(db)
    with pytest.raises(ApiKeyError, match="does not fit role 'edge'"):
        await keys.create(f"bad-{uuid.uuid4().hex[:6]}", "edge", ["1000"], kind="qms")
    with pytest.raises(ApiKeyError, match="does not fit role 'erp'"):
        await keys.create(f"bad-{uuid.uuid4().hex[:6]}", "erp", ["1000"], kind="mes")
    _, key = await _key(db, "plant-system", "wms", sources=["wms-1000", "lager"])
    info = await keys.authenticate(key)
    assert info is not None and info.source_kind == "wms"
    assert info.may_speak_for("wms-1000-a") and info.may_speak_for("lager") and not info.may_speak_for("wms-2000")
