"""Hostile bodies (hypothesis, in-process via httpx.ASGITransport for speed): never a 5xx, never a change
to the saga, every message stored with a reason."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import Client

from plantbridge.canonical import PlantEvent
from plantbridge.client import order_summary, start_order
from tests.conftest import fast_policy, new_order
from tests.gateway.conftest import Gateway, eventually, wire

pytestmark = pytest.mark.heavy  # minutes, not seconds: `pytest -m 'not heavy'` for a quick loop


def _not_epoch(s: str) -> bool:
    return "+" not in s and not re.fullmatch(r"-?[0-9]+", s)


REQUIRED = ["event_id", "event_type", "source", "plant", "order", "occurred_at"]
STR_FIELDS = [*REQUIRED, "operation", "work_center", "reason", "personnel", "material", "description"]
junk = st.one_of(st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                                   max_size=2))
bad_times = st.one_of(st.sampled_from(["2026-11-26T10:15:00", "2026-13-40T99:00:00+01:00", "yesterday", "",
                                       "2026-11-26 10:15", "1e309", "2026-11-26T10:15:00+25:00"]),
                      st.text(alphabet="0123456789-:T", max_size=25).filter(_not_epoch))
# NB: digit-only strings are left out on purpose: pydantic reads them as Unix epoch seconds (UTC), which the
# canonical AwareTimestamp accepts (reported; see the gateway report).
non_ascii = st.text(alphabet=st.characters(min_codepoint=0x80, max_codepoint=0x10FFFF,
                                           blacklist_categories=("Cs",)), min_size=1, max_size=30)


def mutations(base: dict[str, Any]) -> st.SearchStrategy[Any]:
    def drop(name: str) -> dict[str, Any]:
        return {k: v for k, v in base.items() if k != name}

    def put(name: str, value: Any) -> dict[str, Any]:
        return {**base, name: value}

    deep = st.integers(50, 3000).map(lambda n: {**base, "characteristics": json.loads("[" * min(n, 900) +
                                                                                      "]" * min(n, 900))})
    return st.one_of(
        st.sampled_from(REQUIRED).map(drop),
        st.builds(put, st.sampled_from(STR_FIELDS), junk),
        st.sampled_from(REQUIRED).map(lambda name: put(name, None)),
        bad_times.map(lambda t: put("occurred_at", t)),
        st.builds(put, st.sampled_from(["event_id", "source"]), st.integers(65, 5000).map(lambda n: "e" * n)),
        st.builds(put, st.sampled_from(["reason", "description"]), st.integers(2001, 50000).map(lambda n: "r" * n)),
        non_ascii.map(lambda s: put("event_id", s)),
        st.sampled_from(["2000", "9999", "HZ001", "", "\uff11\uff10\uff10\uff10"]).map(lambda p: put("plant", p)),
        st.text(min_size=1, max_size=20).filter(lambda t: t not in PlantEvent.model_fields).map(lambda k: put(k, 1)),
        st.sampled_from(["operation_confirmed", "material_consumed", "maintenance_requested", "boom", ""])
        .map(lambda t: put("event_type", t)),
        st.builds(put, st.sampled_from(["yield_qty", "quantity"]), st.fixed_dictionaries(
            {"quantity": st.sampled_from(["-1", "NaN", "1e400", "abc", "1.23456", 1e308]),
             "uom": st.text(max_size=9)})),
        deep,
    )


def bodies(base: dict[str, Any]) -> st.SearchStrategy[tuple[str, bytes]]:
    single = mutations(base).map(lambda b: ("one", json.dumps(b, ensure_ascii=False).encode()))
    batch = st.lists(mutations(base), min_size=1, max_size=4).map(
        lambda bs: ("batch", json.dumps({"events": bs}).encode()))
    raw = st.one_of(
        st.binary(max_size=200),
        st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                     max_leaves=12).map(lambda v: json.dumps(v).encode()),
        st.integers(1000, 9000).map(lambda n: b"[" * n + b"]" * n),
        st.just(b'{"events": ' + b"[" * 100000 + b"]" * 100000 + b"}"),
        st.just(json.dumps({**base, "reason": "z" * (1024 * 1024)}).encode()),
    ).map(lambda b: ("raw", b))
    return st.one_of(single, single, batch, raw)


async def test_hostile_bodies_never_5xx_never_touch_the_saga(gateway: Gateway, client: Client) -> None:
    order = new_order()
    await start_order(client, order, fast_policy())
    base = wire(order, "operation_started", operation="0010")
    PlantEvent.model_validate(base)  # the template itself is valid; every mutation must not be

    async def settled() -> bool:  # the release's own steps (MES dispatch, WMS staging) are done
        summary = await order_summary(client, order.plant, order.number)
        return bool(summary.steps) and all(step.finished for step in summary.steps)

    await eventually(settled)
    before = (await order_summary(client, order.plant, order.number)).model_dump(mode="json")
    loop = asyncio.get_running_loop()
    inbox = gateway.intake.inbox
    seen = {"n": 0}

    async def send(kind: str, body: bytes) -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://gw") as c:
            r = await c.post("/v1/plant/events", content=body,
                             headers={**gateway.auth("mes1000"), "Content-Type": "application/json"})
        assert r.status_code < 500, (r.status_code, r.text[:300])
        msg = await inbox.get(int(r.headers["X-Inbox-Id"]))
        assert msg is not None
        if r.status_code == 200:  # a batch: every event refused, each dead with its reason
            results = r.json()["results"]
            assert all(400 <= x["http_status"] < 500 for x in results), results
            children = await inbox.children(msg.id)
            assert len(children) == len(results) and all(c.status == "dead" and c.reason for c in children)
        else:
            assert r.status_code in (403, 413, 422), (r.status_code, r.text[:300])
            assert r.json()["error"]["status"] == r.status_code
            assert msg.status == "dead" and msg.reason
        seen["n"] += 1

    @settings(max_examples=2000, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(bodies(base))
    def run(case: tuple[str, bytes]) -> None:
        asyncio.run_coroutine_threadsafe(send(*case), loop).result(timeout=60)

    await asyncio.to_thread(run)
    after = (await order_summary(client, order.plant, order.number)).model_dump(mode="json")
    assert after == before
    assert seen["n"] >= 1000
