"""Machine to ERP over MQTT, all real: a Sparkplug B machine (the MQTT machine publisher) -> a Mosquitto of
the test's own (restarted mid-stream) -> the edge agent (SQLite outbox) -> the gateway (stopped for a
while) -> the `ProductionOrder` saga on the real Temporal server -> the SAP OData connector -> the
S/4HANA simulator. Fixtures and helpers are those of `test_edge_to_erp` (the OPC UA path).

Counted where each real component records it: the edge outbox, the saga's summary, SAP's own
confirmations: nothing lost, nothing doubled.
"""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client

from plantbridge.connectors.sap_odata import SapODataConnector
from plantbridge.edge import EdgeAgent
from plantbridge.edge.config import EdgeConfig, parse_config
from plantbridge.edge.mqtt_session import MqttSession
from plantbridge.edge.states import EquipmentState
from plantbridge_devtools.simulators.machines import MachineSpec
from plantbridge_devtools.simulators.machines.mqtt_publisher import MqttMachinePublisher
from plantbridge_devtools.simulators.sap.server import SimulatorServer
from tests.e2e.conftest import SAP_PLANT
from tests.e2e.test_edge_to_erp import (  # noqa: F401  (fixtures)
    DE,
    DS,
    EDGE_REASONS,
    EDGE_SOURCE,
    OC,
    WORK_CENTER,
    Gateway,
    assert_in_order,
    assert_one_confirmation,
    confirmation_posted,
    edge_events,
    edge_key,
    gateway,
    kinds,
    outbox,
    release_order,
    summary,
    up,
)
from tests.edge.mqtt_helpers import PrivateBroker, unique
from tests.support import eventually

MACHINE = "Q1"
METRICS = {"state": "Machine/State", "good": "Counters/Good", "scrap": "Counters/Scrap",
           "stop_reason": "Machine/StopReason", "order": "Job/Order", "operation": "Job/Operation"}


def mqtt_edge_config(broker: PrivateBroker, gateway_url: str, group: str, store: Path) -> EdgeConfig:
    return parse_config({
        "plant": SAP_PLANT,
        "source": EDGE_SOURCE,
        "gateway": {"url": gateway_url, "backoff_initial_s": 0.1, "backoff_max_s": 0.5, "timeout_s": 30},
        "endpoints": {"broker": {"url": broker.url, "client_id": unique("edge-"), "reconnect_initial_s": 0.2,
                                 "reconnect_max_s": 0.5}},
        "machines": [{"id": MACHINE, "endpoint": "broker", "work_center": WORK_CENTER,
                      "mqtt": {"format": "sparkplug", "group": group, "edge_node": "line", "device": "{id}",
                               "metrics": METRICS}}],
        "reason_map": EDGE_REASONS,
        "min_downtime_s": 0,
        "final_on_order_change": True,
        "outbox_path": str(store),
    }, "edge-mqtt-e2e")


async def test_sparkplug_machine_broker_restart_and_gateway_away_reach_sap_once(
    client: Client, sap: SimulatorServer, sap_worker: object, sap_reader: SapODataConnector, up: Gateway,  # noqa: F811
    edge_key: str, tmp_path: Path,  # noqa: F811
) -> None:
    broker = PrivateBroker(tmp_path / "broker")
    await broker.start()
    group = unique("g")
    pub = MqttMachinePublisher([MachineSpec(MACHINE, work_center=WORK_CENTER)], mode="sparkplug", group=group,
                               edge_node="line", port=broker.port)
    number, handle = await release_order(client, sap, sap_reader)
    await pub.start()
    await pub.set_order(MACHINE, number, "0010")
    agent = EdgeAgent(mqtt_edge_config(broker, up.url, group, tmp_path / "outbox.db"), api_key=edge_key)
    await agent.start()
    tracker = agent.trackers[MACHINE]

    async def counted(good: int, scrap: int = 0) -> None:
        expected = (tracker.acc_good + good, tracker.acc_scrap + scrap)
        await pub.count(MACHINE, good, scrap)
        await eventually(lambda: (tracker.acc_good, tracker.acc_scrap) == expected, what=f"counted {expected}")

    async def state(expected: EquipmentState) -> None:
        await eventually(lambda: tracker.state is expected, what=f"{MACHINE} {expected}")

    try:
        await eventually(lambda: tracker.order == number, what="the machine's birth")
        await pub.run(MACHINE)
        await state(EquipmentState.RUNNING)
        await counted(25, 1)
        await pub.stop_machine(MACHINE, "MAINT")
        await state(EquipmentState.DOWN)
        await pub.run(MACHINE)
        await eventually(lambda: agent.stats()["sent"] == 2, what="first downtime delivered")

        await up.down()  # the gateway goes away ...
        await counted(10)
        await broker.stop()  # ... and the broker restarts mid-stream; the machine keeps producing
        await pub.count(MACHINE, 5)
        await eventually(lambda: not any(s.stats.connected for s in agent.sessions), what="the edge lost the broker")
        await broker.start()
        await eventually(lambda: tracker.acc_good == 40, what="the 5 parts made while the broker was down (rebirth)")
        await pub.stop_machine(MACHINE, "BREAKDOWN")
        await state(EquipmentState.DOWN)
        await pub.run(MACHINE)
        await state(EquipmentState.RUNNING)
        await counted(3)
        assert agent.finish_operation(WORK_CENTER) == 1
        # the broker fires the node's will (NDEATH) as it goes down; the edge, away meanwhile, missed the
        # new NBIRTH (QoS 0 by the spec) and gets the death from its persistent session: the machine was
        # unavailable until the rebirth it asked for (one more downtime pair, reason UNSPECIFIED)
        host = next(x for x in agent.sessions if isinstance(x, MqttSession)).sparkplug
        blips = host.stats.deaths
        await eventually(lambda: agent.stats()["queued"] == 3 + 2 * blips, what="the events buffered in the outbox")
        await eventually(lambda: agent.stats()["gateway_failures"] >= 2, what="the agent trying the gateway meanwhile")

        await up.start()
        await eventually(lambda: agent.stats()["queued"] == 0, what="outbox drained after the gateway came back")
        rows = outbox(agent)
        s = await eventually(lambda: confirmation_posted(client, number, rows[-1]["event_id"]), what="the confirmation")
        stats = agent.stats()
        births = host.stats.births
    finally:
        await agent.stop()
        await pub.stop()
        await broker.stop()

    assert births >= 4  # NBIRTH + DBIRTH before and after the broker restart
    assert blips in (0, 1)
    total = 5 + 2 * blips
    assert kinds(rows) == [DS, DE] * (2 + blips) + [OC]
    assert [r["status"] for r in rows] == ["accepted"] * total, rows
    assert_in_order(rows)
    assert [r["payload"].get("reason") for r in rows[:-1]] == (
        ["MAINT-01"] * 2 + ["UNSPECIFIED"] * 2 * blips + ["BRK-01"] * 2)
    assert rows[-1]["payload"]["yield_qty"]["quantity"] == "43"
    assert rows[-1]["payload"]["scrap_qty"]["quantity"] == "1"
    assert stats["sent"] == total and stats["duplicate"] == 0 and stats["reconnects"] >= 1

    ids = [r["event_id"] for r in rows]
    assert edge_events(s) == ids
    assert s.events_accepted == total and s.duplicates == 0 and s.events_rejected == 0 and s.downtime_open == {}
    op = s.operations["0010"]
    assert (op.yield_total, op.scrap_total, op.final, op.confirmations) == (43, 1, True, 1)
    assert (await summary(client, number)).events_accepted == total
    assert_one_confirmation(sap, number, good=43, scrap=1)
    await handle.terminate("test done")
