"""API governance (issue 15 item 9): published JSON Schemas per contract version, checked in and kept
compatible; `Deprecation`/`Sunset` headers from the deprecation registry.

- the checked-in `docs/schemas/` equal the models' schemas (regenerate with `REGENERATE`);
- the models stay compatible with every published version; the checker finds removed fields, new
  required fields, narrowed types, enums and bounds (inbound) and widened enums (outbound), and the
  generator refuses to overwrite a published file incompatibly;
- each event type's schema admits its example and refuses it without a field the type needs, as the model does;
- served over HTTP to any role's key (401 without), 404 for unknown contracts;
- a key from before source kinds gets `Deprecation`, `Sunset` and `Link` on every answer; a key with a kind none.
"""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import jsonschema_rs
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from plantbridge.canonical.ack import Acknowledgement
from plantbridge.canonical.events import REQUIRED_FIELDS, EventType, PlantEvent
from plantbridge.gateway import deprecations
from plantbridge.gateway.contracts import CONTRACTS, find, relative_file
from plantbridge.gateway.contracts_doc import breaking_changes, main, render
from plantbridge.gateway.deprecations import Deprecation, DeprecationHeaders
from plantbridge.gateway.openapi_examples import PLANT_EVENT_EXAMPLES
from plantbridge.gateway.schema_compat import incompatibilities
from plantbridge.store import ApiKeys, Database
from tests.gateway.conftest import Gateway

DOCS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
REGENERATE = "python -m plantbridge.gateway.contracts_doc docs/schemas"


def test_checked_in_schemas_are_current() -> None:
    stale = [relative_file(c) for c in CONTRACTS if not (DOCS / relative_file(c)).exists()
             or (DOCS / relative_file(c)).read_text() != render(c)]
    assert not stale, f"docs/schemas is stale ({stale}): run `{REGENERATE}`"


def test_models_stay_compatible_with_every_published_version() -> None:
    assert len(list(DOCS.glob("v*/*.json"))) >= len(CONTRACTS)
    assert breaking_changes(DOCS) == []


class _Narrowed(PlantEvent):  # deliberately incompatible changes, as a careless edit of the model would make
    decision: Literal["release", "rework"] | None = None  # "scrap" dropped
    personnel: int | None = None  # was a string
    event_id: str  # the published pattern and length gone: widening, allowed


def _schema_of(model: type[Any], *, drop: str | None = None, require: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema()
    if drop:
        del schema["properties"][drop]
    if require:
        schema["required"].append(require)
    return schema


def test_the_compatibility_check_fails_on_incompatible_changes() -> None:
    published = json.loads((DOCS / "v1" / "plant-event.json").read_text())
    found = incompatibilities(published, _schema_of(_Narrowed, drop="rework_qty", require="batch"))
    text = "\n".join(found)
    assert "/properties/rework_qty: field removed" in text
    assert "/properties/batch: field became required" in text
    assert "/properties/decision: value(s) ['scrap'] no longer accepted" in text
    assert "/properties/personnel: type string no longer accepted" in text
    assert "event_id" not in text  # a looser field is compatible
    assert len(found) == 4, found
    # Tightened bounds and forbidding extra fields narrow too.
    odoo = json.loads((DOCS / "v1" / "odoo-webhook.json").read_text())
    tighter = json.loads(json.dumps(odoo))
    tighter["properties"]["_model"]["maxLength"] = 50
    tighter["properties"]["_id"]["minimum"] = 10
    tighter["additionalProperties"] = False
    assert len(incompatibilities(odoo, tighter)) == 3
    # Widening an inbound contract is fine: a new optional field, a new enum value, a looser bound.
    wider = json.loads(json.dumps(odoo))
    wider["properties"]["note"] = {"type": "string"}
    wider["properties"]["_model"]["maxLength"] = 500
    assert incompatibilities(odoo, wider) == []
    # Outbound (the acknowledgement): readers break on a new status, or a field that may now be missing.
    ack = json.loads((DOCS / "v1" / "acknowledgement.json").read_text())

    class _Ack(Acknowledgement):
        status: Literal["accepted", "rejected", "duplicate", "queued"]  # type: ignore[assignment]

    widened = _schema_of(_Ack)
    assert incompatibilities(ack, widened, inbound=False) == [
        "/properties/status: new value(s) ['queued'] readers do not know"]
    optional = json.loads(json.dumps(ack))
    optional["required"].remove("status")
    assert incompatibilities(ack, optional, inbound=False) == ["/properties/status: field no longer always present"]


def test_the_generator_refuses_to_break_a_published_version(tmp_path: Path) -> None:
    shutil.copytree(DOCS, tmp_path / "schemas")
    published = tmp_path / "schemas" / "v1" / "odoo-webhook.json"
    old = json.loads(published.read_text())
    old["properties"]["_company"] = {"type": "integer"}  # published, but the model no longer has it
    published.write_text(json.dumps(old))
    before = published.read_text()
    assert main([str(tmp_path / "schemas")]) == 1
    assert published.read_text() == before  # nothing written
    assert breaking_changes(tmp_path / "schemas") == ["odoo-webhook v1: /properties/_company: field removed"]
    (tmp_path / "schemas" / "v1" / "gone.json").write_text("{}")
    assert any("gone.json: published, but no longer in the registry" in p
               for p in breaking_changes(tmp_path / "schemas"))


@pytest.mark.parametrize("event_type", list(EventType))
def test_each_event_type_schema_refuses_what_the_model_refuses(event_type: EventType) -> None:
    contract = find(f"plant-event.{event_type.value}", 1)
    assert contract is not None
    validator = jsonschema_rs.validator_for(contract.schema())
    example = PLANT_EVENT_EXAMPLES[event_type.value]
    assert validator.is_valid(example)
    PlantEvent.model_validate(example)
    for name in REQUIRED_FIELDS[event_type]:
        missing = {k: v for k, v in example.items() if k != name}
        assert not validator.is_valid(missing), name
        with pytest.raises(ValidationError):
            PlantEvent.model_validate(missing)
    other = next(t for t in EventType if t is not event_type)
    assert not validator.is_valid({**example, "event_type": other.value})
    assert jsonschema_rs.validator_for(find("plant-event", 1).schema()).is_valid(example)  # type: ignore[union-attr]


async def test_schemas_served_to_every_role(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        assert (await http.get("/v1/schemas")).status_code == 401
        for who in ("mes1000", "edge1000", "erp1000", "sup1000"):
            r = await http.get("/v1/schemas", headers=gateway.auth(who))
            assert r.status_code == 200, r.text
        index = r.json()["schemas"]
        assert {(e["name"], e["version"]) for e in index} == {(c.name, c.version) for c in CONTRACTS}
        for e in index:
            r = await http.get(e["href"], headers=gateway.auth("erp1000"))
            assert r.status_code == 200 and r.headers["content-type"] == "application/schema+json", r.text
            assert r.json() == json.loads((DOCS / f"v{e['version']}" / f"{e['name']}.json").read_text())
        r = await http.get("/v1/schemas/plant-event", headers=gateway.auth("edge1000"))
        assert [v["version"] for v in r.json()["versions"]] == [1]
        for path in ("/v1/schemas/plant-event/7", "/v1/schemas/no-such", "/v1/schemas/no-such/1"):
            r = await http.get(path, headers=gateway.auth("sup1000"))
            assert r.status_code == 404 and r.json()["error"]["code"] == "schema_not_found", path
        r = await http.get("/v1/deprecations", headers=gateway.auth("sup1000"))
        assert deprecations.KEY_WITHOUT_KIND in {d["id"] for d in r.json()["deprecations"]}


async def test_a_key_without_kind_is_answered_with_deprecation_and_sunset(gateway: Gateway, db: Database) -> None:
    """The fixture's plant keys were created without a kind (as before kinds existed); a key with one is not."""
    _, with_kind = await ApiKeys(db).create(f"mes-kind-{uuid.uuid4().hex[:6]}", "plant-system", ["1000"],
                                            kind="mes")
    legacy = deprecations.by_id(deprecations.KEY_WITHOUT_KIND)
    event = {**PLANT_EVENT_EXAMPLES["operation_started"], "event_id": f"dep-{uuid.uuid4().hex[:16]}",
             "order": "4999777", "source": "mes-1000"}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        r = await http.post("/v1/plant/events", json=event, headers=gateway.auth("mes1000"))
        assert r.status_code in (200, 202), r.text
        assert r.headers["deprecation"] == f"@{int(datetime(2026, 12, 2, tzinfo=UTC).timestamp())}"
        assert parsedate_to_datetime(r.headers["sunset"]) == datetime(2027, 6, 30, tzinfo=UTC) == datetime.combine(
            legacy.sunset, datetime.min.time(), UTC)
        assert r.headers["link"] == '</v1/deprecations>; rel="deprecation sunset"; type="application/json"'
        r = await http.post("/v1/plant/events", json={**event, "plant": "9"}, headers=gateway.auth("edge1000"))
        assert r.status_code == 403 and "sunset" in r.headers  # errors too: every answer to such a key
        r = await http.post("/v1/plant/events", json={**event, "event_id": f"dep-{uuid.uuid4().hex[:16]}"},
                            headers={"Authorization": f"Bearer {with_kind}"})
        assert r.status_code in (200, 202), r.text
        assert "deprecation" not in r.headers and "sunset" not in r.headers
        r = await http.get("/v1/schemas", headers=gateway.auth("erp1000"))  # an ERP key has no kind by design
        assert "deprecation" not in r.headers


async def test_deprecated_endpoints_and_contract_versions_are_declared_once(monkeypatch: pytest.MonkeyPatch,
                                                                           gateway: Gateway) -> None:
    """The registry alone marks an endpoint (any path matching its template) and a contract version."""
    old = Deprecation("old-things", "endpoint", "GET /old/{plant}/things", since=datetime(2026, 1, 1).date(),
                      sunset=datetime(2026, 9, 30).date(), instead="GET /new")
    app = Starlette(routes=[Route("/old/{plant}/things", lambda _: PlainTextResponse("x")),
                            Route("/new", lambda _: PlainTextResponse("y"))])
    wrapped = DeprecationHeaders(app, [old])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://t") as http:
        r = await http.get("/old/1000/things")
        assert r.headers["deprecation"] == "@1767225600" and r.headers["sunset"] == "Wed, 30 Sep 2026 00:00:00 GMT"
        assert "deprecation" not in (await http.get("/new")).headers
        assert "deprecation" not in (await http.post("/old/1000/things")).headers  # another method
    version = Deprecation("plant-event-v1", "contract", "plant-event:1", since=datetime(2026, 12, 2).date(),
                          sunset=datetime(2027, 12, 31).date(), instead="plant-event v2")
    monkeypatch.setattr(deprecations, "DEPRECATIONS", (*deprecations.DEPRECATIONS, version))
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        r = await http.get("/v1/schemas/plant-event/1", headers=gateway.auth("erp1000"))
        assert r.status_code == 200 and r.headers["sunset"] == "Fri, 31 Dec 2027 00:00:00 GMT"
        index = (await http.get("/v1/schemas", headers=gateway.auth("erp1000"))).json()["schemas"]
        assert [e["sunset"] for e in index if e["deprecated"]] == ["2027-12-31"]
