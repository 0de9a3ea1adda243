"""The OPC UA machine simulator, end to end: a real asyncua server on a free 127.0.0.1 port and real
asyncua clients (plus its HTTP control API and its command line)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaError

from plantbridge_devtools.simulators.machines import (
    MachineKind,
    MachineryItemState,
    MachineSimulator,
    MachineSpec,
    PackMLState,
    generate_specs,
    parse_machines,
)
from plantbridge_devtools.simulators.machines import server as server_module
from plantbridge_devtools.simulators.machines.address_space import nid
from plantbridge_devtools.simulators.machines.control import ControlServer
from plantbridge_devtools.simulators.machines.model import machinery_state_of, packml_hierarchy, parse_state
from plantbridge_devtools.simulators.machines.nodeset_loader import (
    DI_URI,
    IA_URI,
    MACHINERY_URI,
    NODESET_DIR,
    NODESETS,
    PACKML_URI,
    load_nodesets,
)
from tests.support import free_port

SIM_URI = "urn:plantbridge:machine-simulator"
SMALL_MAX = 1000


def endpoint() -> str:
    return f"opc.tcp://127.0.0.1:{free_port()}/plantbridge/"


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[MachineSimulator]:
    machines = [
        MachineSpec("M01", "Assembly cell 1", "ASSY-01", MachineKind.MACHINERY),
        MachineSpec("M02", "Packaging line 1", "PACK-01", MachineKind.PACKML),
        MachineSpec("M03", "Small counter", "ASSY-02", counter_max=SMALL_MAX, nominal_cycle_time_ms=20),
    ]
    simulator = MachineSimulator(endpoint(), machines)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def ua_client(sim: MachineSimulator) -> AsyncIterator[Client]:
    async with Client(sim.endpoint, timeout=10) as client:
        yield client


async def read(client: Client, sim: MachineSimulator, machine_id: str, name: str) -> Any:
    return await client.get_node(sim.node_map(machine_id)[name]).read_value()


async def state_browse_name(client: Client, state_id: ua.NodeId) -> str:
    name = await client.get_node(state_id).read_browse_name()
    return f"{(await client.get_namespace_array())[name.NamespaceIndex]}|{name.Name}"


# ------------------------------------------------------------------ pure model


def test_specs_parse_generate_and_validate() -> None:
    specs = parse_machines("M01:ASSY-01:machinery,M02:PACK-01:packml:Packer 1")
    assert [(s.id, s.work_center, s.kind, s.name) for s in specs] == [
        ("M01", "ASSY-01", MachineKind.MACHINERY, "M01"),
        ("M02", "PACK-01", MachineKind.PACKML, "Packer 1"),
    ]
    generated = generate_specs(100, packml_every=10)
    assert len({s.id for s in generated}) == 100 and generated[0].id == "M001" and generated[-1].id == "M100"
    assert sum(s.kind is MachineKind.PACKML for s in generated) == 10
    with pytest.raises(ValueError):
        MachineSpec("M.1")  # the dot separates NodeId path segments
    with pytest.raises(ValueError):
        parse_machines("M01,M01")
    with pytest.raises(ValueError):
        MachineSpec("M01", counter_max=2**32)


def test_state_vocabulary() -> None:
    assert parse_state("executing") is MachineryItemState.EXECUTING
    assert parse_state("Held") is PackMLState.HELD and parse_state(6) is PackMLState.EXECUTE
    assert parse_state("9") is PackMLState.ABORTED
    with pytest.raises(ValueError):
        parse_state("Flying")
    assert packml_hierarchy(PackMLState.EXECUTE) == ("Cleared", "Running", "Execute")
    assert packml_hierarchy(PackMLState.STOPPED) == ("Cleared", "Stopped", None)
    assert packml_hierarchy(PackMLState.ABORTED) == ("Aborted", None, None)
    assert machinery_state_of(PackMLState.SUSPENDED) is MachineryItemState.NOT_EXECUTING


# ------------------------------------------------------------------ address space


async def test_nodesets_loaded(sim: MachineSimulator, ua_client: Client) -> None:
    namespaces = await ua_client.get_namespace_array()
    for uri in (DI_URI, IA_URI, MACHINERY_URI, PACKML_URI, SIM_URI):
        assert uri in namespaces
    assert namespaces.index(SIM_URI) == sim.namespace_index
    assert all(report.loaded for report in sim.nodeset_reports), [r.summary() for r in sim.nodeset_reports]
    di = sim.nodeset_reports[0]
    assert di.model_uri == DI_URI and len(di.removed_design_tool_only) == 9
    # the Machinery entry point and the PackML objects folder come from the NodeSets
    machinery = namespaces.index(MACHINERY_URI)
    machines = await ua_client.nodes.objects.get_child(f"{machinery}:Machines")
    assert machines.nodeid == nid(1001, machinery)


async def test_node_map_and_browse_paths(sim: MachineSimulator, ua_client: Client) -> None:
    ns = sim.namespace_index
    node_map = sim.node_map("M02")
    assert node_map["GoodCount"] == f"ns={ns};s=M02.GoodCount"
    assert node_map["PackMLState"] == f"ns={ns};s=M02.PackMLState"
    assert "PackMLState" not in sim.node_map("M01")
    for machine_id in ("M02", "M03"):  # M03's nodes are a replay of M01's instantiation
        for name, node_id in sim.node_map(machine_id).items():  # every documented node exists
            node_class = await ua_client.get_node(node_id).read_node_class()
            assert node_class in (ua.NodeClass.Object, ua.NodeClass.Variable), name
    display = await ua_client.get_node(sim.node_map("M03")["MachineryItemState"]).read_display_name()
    assert display.Text == "MachineryItemState"

    namespaces = await ua_client.get_namespace_array()
    mns, dins = namespaces.index(MACHINERY_URI), namespaces.index(DI_URI)
    machine = await ua_client.nodes.objects.get_child([f"{mns}:Machines", f"{ns}:M01"])
    assert machine.nodeid.to_string() == sim.node_map("M01")["Machine"]
    current = await machine.get_child(
        [f"{mns}:MachineryBuildingBlocks", f"{mns}:MachineryItemState", "0:CurrentState", "0:Id"]
    )
    assert current.nodeid.to_string() == sim.node_map("M01")["MachineryItemState.CurrentState.Id"]
    good = await machine.get_child(f"{ns}:GoodCount")
    assert good.nodeid.to_string() == sim.node_map("M01")["GoodCount"]
    assert await good.read_data_type_as_variant_type() == ua.VariantType.UInt32

    identification = await machine.get_child(f"{dins}:Identification")
    type_definition = await identification.read_type_definition()
    assert type_definition == nid(1012, mns)  # MachineIdentificationType
    add_ins = await machine.get_referenced_nodes(refs=ObjectIds.HasAddIn, direction=ua.BrowseDirection.Forward)
    assert identification in add_ins
    assert await read(ua_client, sim, "M01", "Identification.SerialNumber") == "SIM-M01"
    assert (await read(ua_client, sim, "M01", "Identification.Manufacturer")).Text
    state_machine = ua_client.get_node(sim.node_map("M01")["MachineryItemState"])
    assert await state_machine.read_type_definition() == nid(1002, mns)


async def test_machinery_state_machine_follows_run_and_stop(sim: MachineSimulator, ua_client: Client) -> None:
    await sim.run("M01")
    assert (await read(ua_client, sim, "M01", "MachineryItemState.CurrentState")).Text == "Executing"
    state_id = await read(ua_client, sim, "M01", "MachineryItemState.CurrentState.Id")
    assert await state_browse_name(ua_client, state_id) == f"{MACHINERY_URI}|Executing"
    assert await read(ua_client, sim, "M01", "MachineryItemState.CurrentState.Number") == 3
    assert await read(ua_client, sim, "M01", "StopReason") == ""

    await sim.stop_machine("M01", "MAINT")
    assert (await read(ua_client, sim, "M01", "MachineryItemState.CurrentState")).Text == "OutOfService"
    assert await read(ua_client, sim, "M01", "StopReason") == "MAINT"
    transition = await read(ua_client, sim, "M01", "MachineryItemState.LastTransition")
    assert transition.Text == "FromExecutingToOutOfService"
    transition_id = await read(ua_client, sim, "M01", "MachineryItemState.LastTransition.Id")
    assert await state_browse_name(ua_client, transition_id) == f"{MACHINERY_URI}|FromExecutingToOutOfService"
    assert await read(ua_client, sim, "M01", "MachineryItemState.LastTransition.TransitionTime") is not None

    await sim.run("M01")
    await sim.stop_machine("M01", "NO_MATERIAL")
    assert (await read(ua_client, sim, "M01", "MachineryItemState.CurrentState")).Text == "NotExecuting"
    await sim.set_state("M01", "NotAvailable")
    state_id = await read(ua_client, sim, "M01", "MachineryItemState.CurrentState.Id")
    assert await state_browse_name(ua_client, state_id) == f"{MACHINERY_URI}|NotAvailable"


async def test_packml_machine(sim: MachineSimulator, ua_client: Client) -> None:
    await sim.run("M02")
    assert await read(ua_client, sim, "M02", "PackMLState") == 6
    assert (await read(ua_client, sim, "M02", "PackML.ExecuteState.CurrentState")).Text == "Execute"
    execute_id = await read(ua_client, sim, "M02", "PackML.ExecuteState.CurrentState.Id")
    assert await state_browse_name(ua_client, execute_id) == f"{PACKML_URI}|Execute"
    assert (await read(ua_client, sim, "M02", "MachineryItemState.CurrentState")).Text == "Executing"

    await sim.stop_machine("M02", "BREAKDOWN")
    assert await read(ua_client, sim, "M02", "PackMLState") == 9
    assert (await read(ua_client, sim, "M02", "PackML.BaseStateMachine.CurrentState")).Text == "Aborted"
    assert (await read(ua_client, sim, "M02", "PackML.MachineState.CurrentState")).Text is None
    assert (await read(ua_client, sim, "M02", "MachineryItemState.CurrentState")).Text == "OutOfService"
    assert await read(ua_client, sim, "M02", "StopReason") == "BREAKDOWN"

    await sim.stop_machine("M02", "NO_MATERIAL")
    assert await read(ua_client, sim, "M02", "PackMLState") == PackMLState.SUSPENDED
    assert await read(ua_client, sim, "M02", "PackML.Status.EquipmentStarved") is True
    await sim.set_state("M02", PackMLState.STOPPED)
    assert (await read(ua_client, sim, "M02", "PackML.MachineState.CurrentState")).Text == "Stopped"
    assert (await read(ua_client, sim, "M02", "MachineryItemState.CurrentState")).Text == "NotExecuting"


async def test_counts_wraparound_reset_and_order(sim: MachineSimulator, ua_client: Client) -> None:
    await sim.reset_counters("M01")
    await sim.count("M01", good=5, scrap=2)
    await sim.count("M01", good=1)
    good = await ua_client.get_node(sim.node_map("M01")["GoodCount"]).read_data_value()
    assert good.Value is not None
    assert good.Value.Value == 6 and good.Value.VariantType is ua.VariantType.UInt32
    assert await read(ua_client, sim, "M01", "ScrapCount") == 2

    await sim.set_counter("M01", good=2**32 - 2)
    await sim.count("M01", good=3)  # 2**32-2 -> 2**32-1 -> 0 -> 1
    assert await read(ua_client, sim, "M01", "GoodCount") == 1
    await sim.set_counter("M03", good=SMALL_MAX)
    await sim.count("M03", good=1)
    assert await read(ua_client, sim, "M03", "GoodCount") == 0  # configurable maximum
    with pytest.raises(ValueError):
        await sim.set_counter("M03", good=SMALL_MAX + 1)

    await sim.reset_counters("M01")
    assert await read(ua_client, sim, "M01", "GoodCount") == 0
    assert await read(ua_client, sim, "M01", "ScrapCount") == 0

    await sim.set_order("M01", "1004157", "0010")
    assert await read(ua_client, sim, "M01", "CurrentOrder") == "1004157"
    assert await read(ua_client, sim, "M01", "CurrentOperation") == "0010"
    await sim.count("M01", good=1, cycle_time_ms=950.0)
    assert await read(ua_client, sim, "M01", "CycleTimeMs") == 950.0


class Changes:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        self.queue.put_nowait((node.nodeid.to_string(), val))

    async def until(self, node_id: str, predicate: Any, within: float = 5.0) -> Any:
        async with asyncio.timeout(within):
            while True:
                got_id, value = await self.queue.get()
                if got_id == node_id and predicate(value):
                    return value


async def test_subscription_receives_data_changes(sim: MachineSimulator, ua_client: Client) -> None:
    node_map = sim.node_map("M01")
    changes = Changes()
    subscription = await ua_client.create_subscription(50, changes)
    await subscription.subscribe_data_change(
        [ua_client.get_node(node_map[name]) for name in ("GoodCount", "MachineryItemState.CurrentState")]
    )
    await sim.reset_counters("M01")
    await sim.run("M01")
    await sim.count("M01", good=7)
    assert await changes.until(node_map["GoodCount"], lambda v: v == 7) == 7
    await sim.stop_machine("M01", "BREAKDOWN")
    state = await changes.until(node_map["MachineryItemState.CurrentState"], lambda v: v.Text == "OutOfService")
    assert state.Text == "OutOfService"
    await subscription.delete()


async def test_restart_keeps_values_and_clients_reconnect(sim: MachineSimulator) -> None:
    await sim.set_counter("M01", good=41)
    node_id = sim.node_map("M01")["GoodCount"]
    old = Client(sim.endpoint, timeout=5)
    await old.connect()
    changes = Changes()
    await (await old.create_subscription(50, changes)).subscribe_data_change(old.get_node(node_id))
    assert await changes.until(node_id, lambda v: v == 41) == 41

    await sim.stop()
    assert not sim.running
    await sim.count("M01", good=1)  # the machine keeps counting while its server is down
    await sim.start()
    assert sim.running
    try:
        await old.disconnect()
    except (UaError, OSError, ConnectionError, TimeoutError):
        pass  # its session died with the old server

    async with Client(sim.endpoint, timeout=10) as new:
        assert await new.get_node(node_id).read_value() == 42
        changes = Changes()
        await (await new.create_subscription(50, changes)).subscribe_data_change(new.get_node(node_id))
        await sim.count("M01", good=1)
        assert await changes.until(node_id, lambda v: v == 43) == 43


async def test_auto_mode_counts_and_emits_noise(sim: MachineSimulator, ua_client: Client) -> None:
    await sim.reset_counters("M03")
    await sim.run("M03")  # 20 ms nominal cycle time
    await sim.stop_machine("M01", "MAINT")  # stopped by script: auto mode leaves it alone
    temperature_before = sim.status("M03")["temperature"]
    await sim.start_auto(rate_hz=50, seed=7, stop_probability=0.0)
    await asyncio.sleep(0.6)
    stats = sim.auto_stats()
    await sim.stop_auto()
    assert stats["ticks"] >= 10 and stats["running"]
    produced = await read(ua_client, sim, "M03", "GoodCount") + await read(ua_client, sim, "M03", "ScrapCount")
    assert produced >= 10
    assert await read(ua_client, sim, "M03", "Temperature") != temperature_before
    assert await read(ua_client, sim, "M01", "StopReason") == "MAINT"
    assert sim.status("M01")["state"] == "OutOfService"


async def test_failed_packml_nodeset_is_reported_and_worked_around(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for nodeset in NODESETS:
        text = (NODESET_DIR / nodeset.file).read_text(encoding="utf-8")
        if nodeset.model_uri == PACKML_URI:
            text = text[: len(text) // 2]  # a broken file
        (tmp_path / nodeset.file).write_text(text, encoding="utf-8")
    monkeypatch.setattr(server_module, "load_nodesets", functools.partial(load_nodesets, directory=tmp_path))
    degraded = MachineSimulator(endpoint(), [MachineSpec("P01", kind=MachineKind.PACKML)])
    await degraded.start()
    try:
        packml_report = degraded.nodeset_reports[-1]
        assert packml_report.model_uri == PACKML_URI and not packml_report.loaded and packml_report.error
        node_map = degraded.node_map("P01")
        assert "PackMLState" in node_map and "PackML" not in node_map
        await degraded.run("P01")
        async with Client(degraded.endpoint, timeout=10) as client:
            assert PACKML_URI not in await client.get_namespace_array()
            assert await client.get_node(node_map["PackMLState"]).read_value() == 6
    finally:
        await degraded.stop()


# ------------------------------------------------------------------ security


async def test_basic256sha256_with_username(tmp_path: Path) -> None:
    secure = MachineSimulator(
        endpoint(),
        [MachineSpec("M01", work_center="ASSY-01")],
        security="basic256sha256",
        cert_dir=tmp_path / "server",
        users={"operator": "s3cret"},
    )
    await secure.start()
    try:
        assert (tmp_path / "server" / "server_cert.der").is_file()
        await secure.count("M01", good=3)

        async def secure_client(user: str | None, password: str | None) -> Client:
            client = Client(secure.endpoint, timeout=10)
            client.application_uri = "urn:plantbridge:test:client"
            cert, key = await client.setup_self_signed_certificate(
                tmp_path / "client" / "key.pem", tmp_path / "client" / "cert.der", host_name="localhost"
            )
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                certificate=str(cert),
                private_key=str(key),
                server_certificate=str(tmp_path / "server" / "server_cert.der"),
                mode=ua.MessageSecurityMode.SignAndEncrypt,
            )
            if user is not None and password is not None:
                client.set_user(user)
                client.set_password(password)
            return client

        client = await secure_client("operator", "s3cret")
        async with client:
            assert await client.get_node(secure.node_map("M01")["GoodCount"]).read_value() == 3
            endpoints = await client.get_endpoints()
            assert {e.SecurityPolicyUri.rsplit("#", 1)[-1] for e in endpoints} == {"Basic256Sha256"}

        for user, password in (("operator", "wrong"), (None, None)):
            with pytest.raises((UaError, ConnectionError, OSError, TimeoutError)):
                async with await secure_client(user, password):
                    pass
        with pytest.raises((UaError, ConnectionError, OSError, TimeoutError)):
            async with Client(secure.endpoint, timeout=5):  # SecurityPolicy None is not offered
                pass
    finally:
        await secure.stop()


# ------------------------------------------------------------------ control surfaces


async def test_http_control_api(sim: MachineSimulator, ua_client: Client) -> None:
    control = ControlServer(sim, port=0)
    await control.start()
    try:
        async with httpx.AsyncClient(base_url=control.url, timeout=10) as http:
            listing = (await http.get("/machines")).json()["machines"]
            assert [m["id"] for m in listing] == ["M01", "M02", "M03"]
            one = (await http.get("/machines/M02")).json()
            assert one["kind"] == "packml" and one["node_map"]["PackMLState"] == sim.node_map("M02")["PackMLState"]

            assert (await http.post("/machines/M01/run")).json()["state"] == "Executing"
            await http.post("/machines/M01/reset")
            counted = (await http.post("/machines/M01/count", json={"good": 4, "scrap": 1})).json()
            assert (counted["good"], counted["scrap"]) == (4, 1)
            assert await read(ua_client, sim, "M01", "GoodCount") == 4
            await http.post("/machines/M01/order", json={"order": "1004157", "operation": "0020"})
            assert await read(ua_client, sim, "M01", "CurrentOperation") == "0020"
            stopped = (await http.post("/machines/M01/stop", json={"reason": "NO_MATERIAL"})).json()
            assert (stopped["state"], stopped["stop_reason"]) == ("NotExecuting", "NO_MATERIAL")
            assert await read(ua_client, sim, "M01", "StopReason") == "NO_MATERIAL"
            assert (await http.post("/machines/M01/counter", json={"good": 9})).json()["good"] == 9
            assert (await http.post("/machines/M02/state", json={"state": "Held"})).json()["packml_state"] == 11
            assert (await http.post("/machines/M01/reset")).json()["good"] == 0

            assert (await http.post("/machines/M99/run")).status_code == 404
            assert (await http.post("/machines/M01/count", json={"good": "many"})).status_code == 422
            assert (await http.post("/machines/M01/state", json={"state": "Flying"})).status_code == 422
            assert (await http.post("/machines/M01/count", content=b"{not json")).status_code == 422
            assert (await http.get("/health")).json()["namespace_index"] == sim.namespace_index
    finally:
        await control.stop()


async def test_command_line_process() -> None:
    opc = endpoint()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "plantbridge_devtools.simulators.machines",
        "--endpoint",
        opc,
        "--machines",
        "M01:ASSY-01:machinery,M02:PACK-01:packml",
        "--control-port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), timeout=30))
        assert ready["event"] == "ready" and ready["opcua"] == opc and ready["machines"] == ["M01", "M02"]
        async with httpx.AsyncClient(base_url=ready["control"], timeout=10) as http:
            await http.post("/machines/M02/run")
            await http.post("/machines/M02/count", json={"good": 2})
        async with Client(opc, timeout=10) as client:
            ns = await client.get_namespace_index(SIM_URI)
            assert await client.get_node(f"ns={ns};s=M02.PackMLState").read_value() == 6
            assert await client.get_node(f"ns={ns};s=M02.GoodCount").read_value() == 2
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_hundred_generated_machines_under_auto_load() -> None:
    specs = generate_specs(100, packml_every=10)
    big = MachineSimulator(endpoint(), specs)
    await big.start()
    try:
        await big.start_auto(rate_hz=10, seed=1, profile="stress")
        async with Client(big.endpoint, timeout=10) as client:
            await asyncio.sleep(1.0)
            nodes = [client.get_node(big.node_map(s.id)["GoodCount"]) for s in specs]
            values = await client.read_values(nodes)
            packml = [s.id for s in specs if s.kind is MachineKind.PACKML]
            assert len(packml) == 10
            states = await client.read_values(
                [client.get_node(big.node_map(mid)["PackML.BaseStateMachine.CurrentState"]) for mid in packml]
            )
            assert {state.Text for state in states} == {"Cleared"}
        stats = big.auto_stats()
        assert stats["running"] and stats["ticks"] >= 5
        assert all(v >= 5 for v in values)
        assert stats["writes"] >= 100 * 10 * 5
    finally:
        await big.stop()
