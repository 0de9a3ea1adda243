"""The gateway's Unified Namespace out: each order state change, retained, QoS 1, against the real
Mosquitto on 1883 (skipped with the reason when it does not answer).

A dashboard subscribed to the tree sees the states of an order driven through the gateway (ERP release,
plant events, supervisor levers); a dashboard that subscribes afterwards gets the order's latest
state at once (retained). A broker that is away never delays nor fails an answer to the plant.
"""

from __future__ import annotations

import time

import httpx
from temporalio.client import Client

from plantbridge.client import order_state
from plantbridge.gateway.uns import OrderStates
from plantbridge.uns import UnsConfig, UnsPublisher
from tests.conftest import new_order
from tests.edge.mqtt_helpers import TopicRecorder, free_port, require_system_broker, unique
from tests.edge.test_edge_mqtt import wait_for
from tests.gateway.conftest import Gateway, eventually, wire
from tests.gateway.test_erp_intake import cloud_event


async def test_order_state_changes_reach_the_uns_retained(gateway: Gateway, http: httpx.AsyncClient,
                                                          client: Client) -> None:
    require_system_broker()
    enterprise = unique("ent")
    uns = OrderStates(UnsPublisher(UnsConfig(url="mqtt://127.0.0.1:1883", enterprise=enterprise),
                                   client_id=unique("gw-uns-")))
    recorder = await TopicRecorder(f"{enterprise}/#").start()
    late: TopicRecorder | None = None
    gateway.deps.uns = uns
    order = new_order()
    topic = f"{enterprise}/1000/plantbridge/orders/{order.number}/state"
    try:
        gateway.source.put(order)
        r = await http.post("/v1/erp/sap/events", json=cloud_event(order.number), headers=gateway.auth("erp1000"))
        assert r.status_code == 200 and r.json()["status"] == "started", r.text
        mes, sup = gateway.auth("mes1000"), gateway.auth("sup1000")
        r = await http.post("/v1/plant/events", json=wire(order, "operation_started", operation="0010"), headers=mes)
        assert r.json()["order_state"] == "in_progress", r.text
        r = await http.post("/v1/plant/events", json=wire(order, "quality_hold", reason="porosity"), headers=mes)
        assert r.json()["order_state"] == "quality_hold", r.text
        url = f"/v1/orders/1000/{order.number}"
        assert (await http.post(f"{url}/release-hold", json={"reason": "re-inspected"}, headers=sup)).status_code == 202
        await wait_for(lambda: len(recorder.on(topic)) == 4, timeout=15, what="the state after the hold release")
        assert (await http.post(f"{url}/cancel", content=b"", headers=sup)).status_code == 202

        async def cancelled() -> bool:
            return (await order_state(client, order.plant, order.number)).state.value == "cancelled"
        await eventually(cancelled)
        await wait_for(lambda: len(recorder.on(topic)) == 5, timeout=15, what="the cancellation on the UNS")
        states = [p["state"] for p in recorder.on(topic)]
        assert states[:3] == ["released", "in_progress", "quality_hold"]
        assert states[3] not in ("quality_hold", "cancelled") and states[4] == "cancelled", states
        payloads = recorder.on(topic)
        assert [p["previous"] for p in payloads] == [None, *states[:-1]]
        assert all(p["plant"] == "1000" and p["order"] == order.number for p in payloads)
        assert payloads[1]["cause"]["event_type"] == "operation_started"
        assert payloads[3]["cause"] == {"lever": "release_hold"} and payloads[4]["cause"] == {"lever": "cancel_order"}

        late = await TopicRecorder(f"{enterprise}/#").start()  # a dashboard that subscribes afterwards
        await wait_for(lambda: late.messages, what="the retained state")
        assert late.messages == [(topic, payloads[-1], True)]
    finally:
        gateway.deps.uns = None
        await uns.close()
        await recorder.stop()
        if late is not None:
            await late.stop()
        await recorder.clear_retained()


async def test_uns_broker_away_never_delays_an_answer(gateway: Gateway, http: httpx.AsyncClient) -> None:
    uns = OrderStates(UnsPublisher(UnsConfig(url=f"mqtt://127.0.0.1:{free_port()}", queue_size=2,
                                             reconnect_initial_s=0.05), client_id=unique("gw-uns-")))
    gateway.deps.uns = uns
    try:
        orders = [new_order() for _ in range(3)]
        for order in orders:
            gateway.source.put(order)
            r = await http.post("/v1/erp/sap/events", json=cloud_event(order.number),
                                headers=gateway.auth("erp1000"))
            assert r.status_code == 200
            started = time.monotonic()
            r = await http.post("/v1/plant/events", json=wire(order, "operation_started", operation="0010"),
                                headers=gateway.auth("mes1000"))
            assert r.status_code == 200 and r.json()["order_state"] == "in_progress"
            assert time.monotonic() - started < 10  # not the broker's connect timeout
        # 6 state changes into a queue of 2: the oldest 4 dropped and counted
        assert uns.publisher.stats.dropped == 4 and uns.publisher.pending == 2
    finally:
        gateway.deps.uns = None
        await uns.close()
