"""Edge configuration errors, and the pure counter and state rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from asyncua import ua

from plantbridge.canonical import EventType
from plantbridge.edge import ConfigError, EquipmentState, load_config
from plantbridge.edge.counters import counter_delta
from plantbridge.edge.eventids import event_id
from plantbridge.edge.states import canonical_state

from .conftest import edge_config_dict

MAX = 2**32 - 1


def write(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "plant-1000.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def base(tmp_path: Path) -> dict[str, object]:
    return edge_config_dict("opc.tcp://127.0.0.1:4840/", "http://127.0.0.1:8080", ["M01", "P01"], tmp_path)


def test_valid_config_and_relative_paths(tmp_path: Path) -> None:
    data = base(tmp_path)
    data["outbox_path"] = "state/outbox.db"
    config = load_config(write(tmp_path, data))
    assert config.outbox_path == tmp_path / "state" / "outbox.db"
    assert config.machines[1].state_source == "packml"
    refs = config.machines[0].node_refs()
    assert refs["cycle_time"].endswith(";s=M01.CycleTimeMs") and "extra:temperature" in refs
    assert config.map_reason("MAINT") == "MAINT-01" and config.map_reason("") == "UNSPECIFIED"
    assert config.map_reason("JAM") == "JAM"  # unmapped local reasons pass through


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        (lambda d: d["machines"][0].update(state_source="opcda"), "machines.0.state_source", "'opcda'"),
        (lambda d: d["endpoints"]["sim"].update(security="aes"), "endpoints.sim.security", "'aes'"),
        (lambda d: d["machines"][1].update(endpoint="line9"), "machines.1.endpoint", "'line9'"),
        (lambda d: d["gateway"].update(url="ftp://gw"), "gateway.url", "'ftp://gw'"),
        (lambda d: d.update(plant="10000"), "plant", "'10000'"),
        (lambda d: d.update(rollup_interval_s=-5), "rollup_interval_s", "-5"),
        (lambda d: d["endpoints"]["sim"].update(allow_insecure=False), "endpoints.sim", "allow_insecure: true"),
        (lambda d: d["endpoints"]["sim"].update(username_env="U", password_env="P"), "endpoints.sim",
         "a password over security none travels in clear"),
        (lambda d: d["endpoints"]["sim"].update(security="basic256sha256", client_cert="c.der"), "endpoints.sim",
         "`opcua:` block"),
        (lambda d: d.update(opcua={"application_uri": "not a uri"}), "opcua.application_uri", "'not a uri'"),
    ],
)
def test_config_errors_name_file_field_and_value(tmp_path: Path, change, field: str, value: str) -> None:  # type: ignore[no-untyped-def]
    data = base(tmp_path)
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and field in message and value in message, message


def test_config_missing_field_unreadable_and_bad_yaml(tmp_path: Path) -> None:
    data = base(tmp_path)
    del data["plant"]
    path = write(tmp_path, data)
    with pytest.raises(ConfigError, match=r"plant-1000.yaml: plant: field required"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("plant: [1000\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_counter_deltas() -> None:
    window = (MAX + 1) // 10
    assert counter_delta(None, 500, MAX, window) == 0  # first reading is the baseline
    assert counter_delta(10, 15, MAX, window) == 5
    assert counter_delta(10, 10, MAX, window) == 0  # unchanged (e.g. after a reconnect)
    assert counter_delta(500, 3, MAX, window) == 3  # reset: counts from zero, never negative
    assert counter_delta(MAX - 2, 4, MAX, window) == 7  # wrap: MAX-2 -> MAX -> 0 -> 4
    assert counter_delta(998, 1, 1000, 100) == 4  # small configured maximum


def test_state_mapping_by_nodeid_and_number_not_text() -> None:
    ns = 4
    assert canonical_state("machinery", ua.NodeId(5006, ns), "", ns) is EquipmentState.RUNNING
    assert canonical_state("machinery", ua.NodeId(5007, ns), "", ns) is EquipmentState.IDLE
    assert canonical_state("machinery", ua.NodeId(5007, ns), "NO_MATERIAL", ns) is EquipmentState.STOPPED
    assert canonical_state("machinery", ua.NodeId(5004, ns), "MAINT", ns) is EquipmentState.DOWN
    assert canonical_state("machinery", ua.NodeId(5005, ns), "", ns) is EquipmentState.UNAVAILABLE
    assert canonical_state("machinery", ua.NodeId(5006, 7), "", ns) is None  # another namespace
    assert canonical_state("machinery", 3, "", ns) is EquipmentState.RUNNING  # StateNumber
    assert canonical_state("machinery", ua.LocalizedText("Executing"), "", ns) is None  # never by text
    assert canonical_state("packml", 6, "", None) is EquipmentState.RUNNING
    assert canonical_state("packml", 11, "", None) is EquipmentState.DOWN  # Held
    assert canonical_state("packml", 5, "", None) is EquipmentState.STOPPED  # Suspended
    assert canonical_state("packml", 4, "", None) is EquipmentState.IDLE
    assert canonical_state("packml", 0, "", None) is EquipmentState.UNAVAILABLE


def test_event_ids_are_deterministic_and_short() -> None:
    from datetime import UTC, datetime

    ts = datetime(2026, 11, 26, 9, 15, tzinfo=UTC)
    first = event_id("1000", "M01", EventType.DOWNTIME_STARTED, ts, 7)
    assert first == event_id("1000", "M01", EventType.DOWNTIME_STARTED, ts, 7)
    assert first == f"edge1000-M01-ds-{int(ts.timestamp() * 1000)}-7"
    long = event_id("1000", "X" * 40, EventType.OPERATION_CONFIRMED, ts, 123456)
    assert len(long) <= 64 and long.startswith("edge1000-")


def test_example_config_loads() -> None:
    example = Path(__file__).parents[2] / "plantbridge" / "edge" / "edge.example.yaml"
    config = load_config(example)
    assert [m.id for m in config.machines] == ["M01", "M02"]
    assert config.machines[1].nodes.state.endswith("M02.PackMLState") is False  # {id} kept until node_refs()
    assert config.machines[1].node_refs()["state"].endswith(";s=M02.PackMLState")
    assert config.machines[1].node_refs()["good"] == "/machinery:Machines/sim:M02/sim:GoodCount"
    line1 = config.opcua_endpoints()["line1"]  # the shipped example is encrypted, its PKI beside the file
    assert (line1.security, line1.mode, line1.allow_insecure) == ("basic256sha256", "sign_and_encrypt", False)
    assert config.opcua.pki_dir == example.parent / "pki"
    assert config.application_uri == "urn:plantbridge:edge:edge-1000"


def test_no_empty_final_confirmation_after_the_operation_was_finished(tmp_path: Path) -> None:
    """finish_operation, then the machine switches order (final_on_order_change): one final, not two."""
    from datetime import UTC, datetime

    from plantbridge.edge.machine import MachineTracker, TrackerStats

    data = base(tmp_path)
    data["final_on_order_change"] = True
    config = load_config(write(tmp_path, data))
    tracker = MachineTracker(config.machines[0], config, TrackerStats())
    now = datetime.now(UTC)
    assert tracker.switch_order("4711", "0010", now, final_previous=True) == []  # nothing before
    tracker.acc_good = 7
    [final] = tracker.finish_operation(now)
    assert final.final and final.yield_qty is not None and final.yield_qty.quantity == 7
    assert tracker.switch_order("4712", "0010", now, final_previous=True) == []  # no empty second final
    tracker.acc_good = 3
    [next_final] = tracker.switch_order("4713", "0010", now, final_previous=True)  # counted work is reported
    assert next_final.order == "4712" and next_final.yield_qty is not None and next_final.yield_qty.quantity == 3
