"""The Unified Namespace out of the edge: each plant event the gateway took is published (not retained,
QoS 1) on the ISA-95 topic tree of the edge configuration, against the real Mosquitto on 1883.

The gateway is played by the Receiver of tests/edge/conftest.py (a real HTTP server); the machine is a
Sparkplug B edge node (the MQTT machine publisher). A unique enterprise per test keeps tests apart.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from plantbridge.edge import EdgeAgent
from plantbridge.edge.config import ConfigError, parse_config
from plantbridge.uns import UnsConfig, UnsPublisher
from plantbridge_devtools.simulators.machines import MachineSpec
from plantbridge_devtools.simulators.machines.mqtt_publisher import MqttMachinePublisher
from tests.edge.conftest import API_KEY, Receiver, wait_for
from tests.edge.mqtt_helpers import TopicRecorder, free_port, require_system_broker, unique
from tests.edge.test_edge_mqtt import mqtt_only_config, spb_machine


def test_uns_config_is_validated(tmp_path: Path) -> None:
    base = mqtt_only_config("mqtt://127.0.0.1:1883", "http://127.0.0.1:9", [spb_machine("S1", "WC", "g")],
                            tmp_path, "c")
    ok = parse_config({**base, "uns": {"url": "mqtt://127.0.0.1:1883", "enterprise": "acme",
                                       "work_centers": {"WC": {"area": "assembly", "line": "L1"}}}})
    assert ok.uns is not None and ok.uns.qos == 1
    topic = ok.uns.event_topic_for({"plant": "1000", "work_center": "WC", "equipment": "S1",
                                    "event_type": "downtime_started", "order": "4711"})
    assert topic == "acme/1000/assembly/L1/S1/plantbridge/events/downtime_started"
    assert ok.uns.order_topic_for("1000", "4711") == "acme/1000/plantbridge/orders/4711/state"
    # a value with a topic separator or wildcard stays one level
    assert ok.uns.order_topic_for("1000", "a/b+#") == "acme/1000/plantbridge/orders/a_b__/state"
    with pytest.raises(ConfigError, match=r"uns\.event_topic = .*unknown placeholder\(s\) \{shift\}"):
        parse_config({**base, "uns": {"url": "mqtt://h", "event_topic": "{enterprise}/{shift}/x"}}, "edge.yaml")
    with pytest.raises(ConfigError, match=r"uns\.order_topic = .*no wildcards"):
        parse_config({**base, "uns": {"url": "mqtt://h", "order_topic": "a/#"}}, "edge.yaml")
    with pytest.raises(ConfigError, match=r"uns\.url = 'http://h': must be mqtt://"):
        parse_config({**base, "uns": {"url": "http://h"}}, "edge.yaml")


async def test_unreachable_uns_broker_drops_oldest_and_never_blocks() -> None:
    publisher = UnsPublisher(UnsConfig(url=f"mqtt://127.0.0.1:{free_port()}", queue_size=3,
                                       reconnect_initial_s=0.05, reconnect_max_s=0.1), client_id=unique("uns-"))
    started = time.monotonic()
    for i in range(5):
        publisher.publish_order_state("1000", f"o{i}", {"state": "released"})
    assert time.monotonic() - started < 0.5  # queued, not sent
    assert publisher.stats.dropped == 2 and publisher.pending == 3
    await wait_for(lambda: publisher.stats.failures >= 1, what="a failed connection attempt")
    assert [m.topic.split("/")[-2] for m in publisher._queue] == ["o2", "o3", "o4"]  # the oldest went
    await asyncio.wait_for(publisher.stop(flush_s=0.5), timeout=5)


async def test_edge_publishes_each_forwarded_event_to_the_uns(
    receiver: Receiver, tmp_path: Path
) -> None:
    require_system_broker()
    enterprise, group = unique("ent"), unique("g")
    recorder = await TopicRecorder(f"{enterprise}/#").start()
    pub = MqttMachinePublisher([MachineSpec("S1", work_center="ASSY-01")], mode="sparkplug", group=group,
                               edge_node="line")
    await pub.start()
    await pub.set_order("S1", "4711", "0010")
    config = mqtt_only_config("mqtt://127.0.0.1:1883", receiver.url, [spb_machine("S1", "ASSY-01", group)],
                              tmp_path, unique("edge-"))
    config["final_on_order_change"] = True
    config["uns"] = {"url": "mqtt://127.0.0.1:1883", "enterprise": enterprise, "client_id": unique("edge-uns-"),
                     "work_centers": {"ASSY-01": {"area": "assembly", "line": "line-1"}}}
    agent = EdgeAgent(parse_config(config), api_key=API_KEY)
    receiver.mode = "503"  # the gateway is away: nothing is forwarded, so nothing is published
    tracker = agent.trackers["S1"]
    try:
        await agent.start()
        await wait_for(lambda: tracker.order == "4711", what="the birth seen")
        await pub.run("S1")
        await pub.count("S1", 12, 1)
        await pub.stop_machine("S1", "MAINT")
        await asyncio.sleep(1.2)
        await pub.run("S1")
        await wait_for(lambda: tracker.acc_good == 12, what="counts seen")
        await pub.set_order("S1", "4712", "0010")  # final confirmation of 4711
        assert agent.outbox is not None
        await wait_for(lambda: agent.outbox.count("pending") == 3, what="3 events waiting in the outbox")
        await asyncio.sleep(0.5)
        assert not recorder.messages
        receiver.mode = "ok"
        await wait_for(lambda: len(receiver.events()) == 3, timeout=15, what="3 events at the gateway")
        await wait_for(lambda: len(recorder.messages) == 3, timeout=10, what="3 events on the UNS")
    finally:
        await agent.stop()
        await pub.stop()
        await recorder.stop()
    base = f"{enterprise}/1000/assembly/line-1/S1/plantbridge/events"
    assert [t for t, _, _ in recorder.messages] == [f"{base}/downtime_started", f"{base}/downtime_ended",
                                                    f"{base}/operation_confirmed"]
    assert [p for _, p, _ in recorder.messages] == receiver.events()  # the canonical events, as forwarded
    assert not any(retained for _, _, retained in recorder.messages)
    assert agent.uns is not None and agent.uns.stats.published == 3 and agent.uns.stats.dropped == 0
