"""The edge agent reading machines over MQTT (plain JSON and Sparkplug B) against a real Mosquitto.

The same scripted machine on the OPC UA simulator, on a Sparkplug B edge node and on plain JSON topics
must give the same plant events (apart from ids and times); Sparkplug deaths make a machine
unavailable; a ``seq`` gap makes the agent ask for a rebirth; a persistent session with QoS 1 keeps
what was published while the agent was away, across a restart of the broker (a private Mosquitto).
Topics are unique per test (group / prefix), so tests never see each other's messages.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from plantbridge.edge import EdgeAgent
from plantbridge.edge.config import ConfigError, parse_config
from plantbridge.edge.mqtt_session import MqttSession
from plantbridge.edge.states import EquipmentState
from plantbridge_devtools.simulators.machines import MachineSimulator, MachineSpec
from plantbridge_devtools.simulators.machines.mqtt_publisher import MqttMachinePublisher
from tests.edge.conftest import API_KEY, Receiver, edge_config_dict, wait_for
from tests.edge.mqtt_helpers import PrivateBroker, require_system_broker, unique

SPB_METRICS = {"state": "Machine/State", "good": "Counters/Good", "scrap": "Counters/Scrap",
               "stop_reason": "Machine/StopReason", "order": "Job/Order", "operation": "Job/Operation",
               "cycle_time": "Process/CycleTimeMs"}
JSON_PATHS = {"state": "state", "good": "good", "scrap": "scrap", "stop_reason": "stop_reason", "order": "order",
              "operation": "operation", "cycle_time": "cycle_time_ms"}


def spb_machine(mid: str, wc: str, group: str, node: str = "line", endpoint: str = "broker") -> dict[str, Any]:
    return {"id": mid, "endpoint": endpoint, "work_center": wc,
            "mqtt": {"format": "sparkplug", "group": group, "edge_node": node, "device": "{id}",
                     "metrics": SPB_METRICS, "telemetry": {"temperature": "Process/Temperature"}}}


def json_machine(mid: str, wc: str, prefix: str, endpoint: str = "broker") -> dict[str, Any]:
    topic = f"{prefix}/{{id}}"
    return {"id": mid, "endpoint": endpoint, "work_center": wc,
            "mqtt": {"format": "json", "timestamp": "ts",
                     "fields": {role: {"topic": topic, "path": path} for role, path in JSON_PATHS.items()},
                     "telemetry": {"temperature": {"topic": topic, "path": "temperature"}}}}


def mqtt_only_config(broker_url: str, gateway: str, machines: list[dict[str, Any]], tmp_path: Path,
                     client_id: str) -> dict[str, Any]:
    config = edge_config_dict("opc.tcp://unused:4840/", gateway, ["M01"], tmp_path)
    config.pop("machine_defaults")
    config["endpoints"] = {"broker": {"url": broker_url, "client_id": client_id, "reconnect_initial_s": 0.2,
                                      "reconnect_max_s": 0.5}}
    config["machines"] = machines
    return config


def events_of(receiver: Receiver, machine: str) -> list[dict[str, Any]]:
    return receiver.events(machine)


def comparable(event: dict[str, Any]) -> tuple[Any, ...]:
    """An event without what differs between transports: ids, times, the equipment id."""
    quantities = tuple((event.get(k) or {}).get("quantity") for k in ("yield_qty", "scrap_qty"))
    return (event["event_type"], event["order"], event.get("operation"), event.get("reason"), quantities,
            event.get("final"), event["work_center"])


def duration(event: dict[str, Any]) -> int | None:
    text = event.get("description") or ""
    return int(text.removeprefix("duration_s=")) if text.startswith("duration_s=") else None


# ---------------------------------------------------------------------------------------- config


def test_mqtt_config_errors_name_the_field(tmp_path: Path) -> None:
    base = mqtt_only_config("mqtt://127.0.0.1:1883", "http://127.0.0.1:9", [spb_machine("S1", "WC", "g")],
                            tmp_path, "c")
    parse_config(base, "edge.yaml")  # valid

    bad_url = {**base, "endpoints": {"broker": {"url": "mqtt:///nohost"}}}
    with pytest.raises(ConfigError, match=r"endpoints\.broker\.url = 'mqtt:///nohost': must be mqtt://"):
        parse_config(bad_url, "edge.yaml")
    no_block = {**base, "machines": [{"id": "S1", "endpoint": "broker", "work_center": "WC"}]}
    with pytest.raises(ConfigError, match=r"machines\.0\.mqtt: machine S1 is on MQTT endpoint 'broker'"):
        parse_config(no_block, "edge.yaml")
    bad_role = spb_machine("S1", "WC", "g")
    bad_role["mqtt"]["metrics"] = {"state": "s", "speed": "x"}
    with pytest.raises(ConfigError, match=r"machines\.0\.mqtt\.metrics.*unknown role\(s\) speed"):
        parse_config({**base, "machines": [bad_role]}, "edge.yaml")
    wildcard = json_machine("J1", "WC", "a/+")
    with pytest.raises(ConfigError, match=r"no \+ or # wildcards"):
        parse_config({**base, "machines": [wildcard]}, "edge.yaml")
    tls = {**base, "endpoints": {"broker": {"url": "mqtt://h", "ca_cert": "ca.pem"}}}
    with pytest.raises(ConfigError, match="ca_cert/client_cert need an mqtts:// url"):
        parse_config(tls, "edge.yaml")


# ---------------------------------------------------------------------------------------- same events


async def test_same_machine_over_opcua_sparkplug_and_json_gives_equal_events(
    sim: MachineSimulator, receiver: Receiver, tmp_path: Path
) -> None:
    require_system_broker()
    group, prefix = unique("g"), f"plantbridge-test/{unique()}"
    spb_pub = MqttMachinePublisher([MachineSpec("S04", work_center="ASSY-04")], mode="sparkplug", group=group,
                                   edge_node="line")
    json_pub = MqttMachinePublisher([MachineSpec("J04", work_center="ASSY-04")], mode="json", prefix=prefix)
    await spb_pub.start()
    await json_pub.start()
    config = edge_config_dict(sim.endpoint, receiver.url, ["M04"], tmp_path, final_on_order_change=True)
    config["endpoints"]["broker"] = {"url": "mqtt://127.0.0.1:1883", "client_id": unique("edge-"),
                                     "reconnect_initial_s": 0.2}
    config["machines"] += [spb_machine("S04", "ASSY-04", group), json_machine("J04", "ASSY-04", prefix)]
    agent = EdgeAgent(parse_config(config), api_key=API_KEY)
    targets: list[tuple[Any, str]] = [(sim, "M04"), (spb_pub, "S04"), (json_pub, "J04")]

    async def step(method: str, *args: Any, **kwargs: Any) -> None:
        for machine, mid in targets:
            await getattr(machine, method)(mid, *args, **kwargs)
        await synced()

    async def synced() -> None:
        def same() -> bool:
            views = []
            for machine, mid in targets:
                tracker, status = agent.trackers[mid], machine.status(mid)
                if (tracker.good_last, tracker.scrap_last, tracker.order) != (status["good"], status["scrap"],
                                                                               status["order"]):
                    return False
                views.append((tracker.state, tracker.stop_reason, tracker.acc_good, tracker.acc_scrap))
            return len(set(views)) == 1
        await wait_for(same, timeout=10, what="the three machines seen alike")

    try:
        for machine, mid in targets:
            await machine.set_order(mid, "4711", "0010")
        await agent.start()
        await wait_for(lambda: all(s.stats.connected for s in agent.sessions), what="both sessions")
        await synced()
        await step("run")
        await step("count", 30, 1)
        await step("count", 12)
        await step("reset_counters")
        await step("count", 20, 2)
        await step("stop_machine", "MAINT")
        await asyncio.sleep(1.5)
        await step("run")
        await step("count", 5)
        await step("stop_machine", "NO_MATERIAL")
        await step("run")
        await step("set_order", "4712", "0010")  # final confirmation of 4711 (final_on_order_change)
        await step("count", 7, 1)
        assert agent.finish_operation("ASSY-04") == 3
        await wait_for(lambda: all(len(events_of(receiver, mid)) == 6 for _, mid in targets), timeout=15,
                       what="6 events of each machine at the gateway")
    finally:
        await agent.stop()
        await spb_pub.stop()
        await json_pub.stop()
        await sim.stop_machine("M04", "END")

    opcua, sparkplug, plain = (events_of(receiver, mid) for _, mid in targets)
    assert [comparable(e) for e in sparkplug] == [comparable(e) for e in opcua]
    assert [comparable(e) for e in plain] == [comparable(e) for e in opcua]
    assert [e["event_type"] for e in opcua] == ["downtime_started", "downtime_ended", "downtime_started",
                                                "downtime_ended", "operation_confirmed", "operation_confirmed"]
    assert comparable(opcua[4])[4] == ("67", "3") and comparable(opcua[5])[4] == ("7", "1")
    for events in (sparkplug, plain):  # the MAINT stop lasted ~1.5 s over each transport
        assert abs((duration(events[1]) or 0) - (duration(opcua[1]) or 0)) <= 1
    assert all(e["equipment"] == mid for (_, mid), evs in zip(targets, (opcua, sparkplug, plain), strict=True)
               for e in evs)
    session = next(s for s in agent.sessions if isinstance(s, MqttSession))
    assert session.describe()["undecodable"] == 0 and session.describe()["seq_gaps"] == 0


# ---------------------------------------------------------------------------------------- deaths


async def test_ndeath_makes_the_machine_unavailable_and_its_downtime_starts(
    receiver: Receiver, tmp_path: Path
) -> None:
    require_system_broker()
    group = unique("g")
    pub = MqttMachinePublisher([MachineSpec("S1", work_center="WC1"), MachineSpec("S2", work_center="WC2")],
                               mode="sparkplug", group=group, edge_node="cell")
    await pub.start()
    await pub.set_order("S1", "5001", "0010")
    await pub.set_order("S2", "5002", "0010")
    machines = [spb_machine("S1", "WC1", group, "cell"), spb_machine("S2", "WC2", group, "cell")]
    agent = EdgeAgent(parse_config(mqtt_only_config("mqtt://127.0.0.1:1883", receiver.url, machines, tmp_path,
                                                    unique("edge-"))), api_key=API_KEY)
    await agent.start()
    s1, s2 = agent.trackers["S1"], agent.trackers["S2"]
    try:
        await wait_for(lambda: s1.order == "5001" and s2.order == "5002", what="births seen")
        await pub.run("S1")
        await pub.run("S2")
        await wait_for(lambda: s1.state is s2.state is EquipmentState.RUNNING, what="both running")

        await pub.device_death("S2")  # one device goes: DDEATH
        await wait_for(lambda: s2.state is EquipmentState.UNAVAILABLE, what="S2 unavailable")
        assert s1.state is EquipmentState.RUNNING
        await wait_for(lambda: receiver.events("S2", "downtime_started"), what="S2 downtime at the gateway")

        await pub.offline()  # the whole node: NDEATH with the session's bdSeq
        await wait_for(lambda: s1.state is EquipmentState.UNAVAILABLE, what="S1 unavailable")
        [ds] = await wait_for(lambda: receiver.events("S1", "downtime_started"), what="S1 downtime started")
        assert ds["order"] == "5001" and ds["reason"] == "UNSPECIFIED"

        await pub.online()  # new bdSeq, NBIRTH + DBIRTHs: both running again, the downtimes end
        await wait_for(lambda: s1.state is s2.state is EquipmentState.RUNNING, what="back after the births")
        await wait_for(lambda: receiver.events("S1", "downtime_ended") and receiver.events("S2", "downtime_ended"),
                       what="downtimes ended")
        host = next(s for s in agent.sessions if isinstance(s, MqttSession)).sparkplug
        assert host.stats.deaths == 2 and host.stats.stale_deaths == 0
    finally:
        await agent.stop()
        await pub.stop()
    assert [e["event_type"] for e in receiver.events("S1")] == ["downtime_started", "downtime_ended"]


async def test_seq_gap_asks_the_node_for_a_rebirth_and_nothing_is_miscounted(
    receiver: Receiver, tmp_path: Path
) -> None:
    require_system_broker()
    group = unique("g")
    pub = MqttMachinePublisher([MachineSpec("S1", work_center="WC1")], mode="sparkplug", group=group,
                               edge_node="cell")
    await pub.start()
    await pub.set_order("S1", "5001", "0010")
    agent = EdgeAgent(parse_config(mqtt_only_config("mqtt://127.0.0.1:1883", receiver.url,
                                                    [spb_machine("S1", "WC1", group, "cell")], tmp_path,
                                                    unique("edge-"))), api_key=API_KEY)
    await agent.start()
    tracker = agent.trackers["S1"]
    try:
        await wait_for(lambda: tracker.order == "5001", what="birth seen")
        await pub.run("S1")
        await pub.count("S1", 10)
        await wait_for(lambda: tracker.acc_good == 10, what="10 counted")
        rebirths = pub.rebirths
        pub._seq = (pub._seq + 3) % 256  # three messages the host never saw
        await pub.count("S1", 4)
        await wait_for(lambda: pub.rebirths == rebirths + 1, what="the node asked to rebirth (NCMD)")
        await pub.count("S1", 1)
        await wait_for(lambda: tracker.acc_good == 15, what="15 counted")
        await asyncio.sleep(0.3)
        assert tracker.acc_good == 15  # the rebirth restated the counter: no double count
        host = next(s for s in agent.sessions if isinstance(s, MqttSession)).sparkplug
        assert host.stats.seq_gaps == 1
    finally:
        await agent.stop()
        await pub.stop()


# ---------------------------------------------------------------------------------------- persistence


async def test_persistent_session_keeps_what_came_while_agent_away_across_broker_restart(
    receiver: Receiver, tmp_path: Path
) -> None:
    broker = PrivateBroker(tmp_path / "broker")
    await broker.start()
    prefix = f"plantbridge-test/{unique()}"
    pub = MqttMachinePublisher([MachineSpec("J1", work_center="WC1")], mode="json", prefix=prefix,
                               port=broker.port)
    config = parse_config(mqtt_only_config(broker.url, receiver.url, [json_machine("J1", "WC1", prefix)], tmp_path,
                                           unique("edge-")))
    first = EdgeAgent(config, api_key=API_KEY)
    try:
        await pub.start()
        await pub.set_order("J1", "6001", "0010")
        await first.start()
        await wait_for(lambda: first.trackers["J1"].order == "6001", what="the retained status seen")
        await pub.run("J1")
        await pub.count("J1", 10)
        await wait_for(lambda: first.trackers["J1"].acc_good == 10, what="10 counted")
        await first.stop()  # the agent goes away; its session (and subscriptions) stay at the broker

        await pub.stop_machine("J1", "MAINT")  # queued for the agent's session
        await pub.count("J1", 5)
        await broker.restart(down_s=0.5)  # the queue survives the broker restart (persistence)
        await pub.wait_connected()
        await asyncio.sleep(1.0)
        await pub.run("J1")
        await pub.count("J1", 2)

        second = EdgeAgent(config, api_key=API_KEY)  # same outbox, same client id
        await second.start()
        try:
            tracker = second.trackers["J1"]
            await wait_for(lambda: tracker.acc_good == 17 and tracker.state is EquipmentState.RUNNING, timeout=15,
                           what="the queued messages delivered")
            [ds] = await wait_for(lambda: receiver.events("J1", "downtime_started"), what="downtime started")
            [de] = await wait_for(lambda: receiver.events("J1", "downtime_ended"), what="downtime ended")
            assert second.finish_operation("WC1") == 1
            [oc] = await wait_for(lambda: receiver.events("J1", "operation_confirmed"), what="confirmation")
        finally:
            await second.stop()
    finally:
        await pub.stop()
        await broker.stop()
    assert ds["reason"] == de["reason"] == "MAINT-01"
    assert 1 <= (duration(de) or 0) <= 4  # from the stop's source time, not from when the agent came back
    assert oc["yield_qty"]["quantity"] == "17" and receiver.duplicates == 0
