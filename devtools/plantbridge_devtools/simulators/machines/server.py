"""Machine simulator: an asyncua OPC UA server whose machines are scripted from Python or HTTP.

It plays foreign equipment and imports nothing of plantbridge outside this folder.

Namespaces (index order is fixed by the load order, but clients should resolve indexes by URI):

    0  http://opcfoundation.org/UA/
    1  urn:plantbridge:machine-simulator:server          (the server's ApplicationUri)
    2  http://opcfoundation.org/UA/DI/                     Opc.Ua.Di.NodeSet2.xml
    3  http://opcfoundation.org/UA/IA/                     Opc.Ua.IA.NodeSet2.xml
    4  http://opcfoundation.org/UA/Machinery/              Opc.Ua.Machinery.NodeSet2.xml
    5  http://opcfoundation.org/UA/PackML/                 Opc.Ua.PackML.NodeSet2.xml
    6  urn:plantbridge:machine-simulator                   the simulator's nodes ("sim" below)

Node map of one machine ``<ID>`` (``M01``). Every node has the string NodeId ``ns=<sim>;s=<ID>.<path>``
(``ns=6;s=M01.GoodCount``); :meth:`MachineSimulator.node_map` returns logical name -> NodeId string.
Browse paths start at ``Objects`` (``i=85``); ``4:`` Machinery, ``2:`` DI, ``5:`` PackML, ``6:`` sim,
``0:`` base namespace.

    logical name                            NodeId (s=...)                         type / values
    Machine                                 M01                                    Object (BaseObjectType)
        browse path 4:Machines/6:M01 (the Machines folder Organizes it; DisplayName = spec name)
    WorkCenter                              M01.WorkCenter                         String property
    Identification                          M01.Identification                     MachineIdentificationType
        browse path 4:Machines/6:M01/2:Identification (HasAddIn from the machine and the building blocks)
    Identification.Manufacturer             M01.Identification.Manufacturer        LocalizedText
    Identification.SerialNumber             M01.Identification.SerialNumber        String (SIM-M01)
    Identification.ProductInstanceUri       M01.Identification.ProductInstanceUri  String
    Identification.Model                    M01.Identification.Model               LocalizedText (spec name)
    Identification.Location                 M01.Identification.Location            String (work center), 4:Location
    MachineryBuildingBlocks                 M01.MachineryBuildingBlocks            FolderType
        browse path 4:Machines/6:M01/4:MachineryBuildingBlocks
    MachineryItemState                      M01.MachineryItemState        MachineryItemState_StateMachineType
        browse path 4:Machines/6:M01/4:MachineryBuildingBlocks/4:MachineryItemState (HasAddIn)
    MachineryItemState.CurrentState         M01.MachineryItemState.CurrentState    LocalizedText: NotAvailable |
                                                                   OutOfService | NotExecuting | Executing
        browse path .../4:MachineryItemState/0:CurrentState (and .../0:CurrentState/0:Id)
    MachineryItemState.CurrentState.Id      M01.MachineryItemState.CurrentState.Id      NodeId of the State
        object of the Machinery NodeSet: ns=4;i=5005 NotAvailable, i=5004 OutOfService,
        i=5007 NotExecuting, i=5006 Executing
    MachineryItemState.CurrentState.Number  M01.MachineryItemState.CurrentState.Number  UInt32 (StateNumber:
                                                   0 NotAvailable, 1 OutOfService, 2 NotExecuting, 3 Executing)
    MachineryItemState.LastTransition       M01.MachineryItemState.LastTransition  LocalizedText FromXToY
    MachineryItemState.LastTransition.Id    M01.MachineryItemState.LastTransition.Id       NodeId of Transition
    MachineryItemState.LastTransition.Number          M01.MachineryItemState.LastTransition.Number     UInt32
    MachineryItemState.LastTransition.TransitionTime  M01.MachineryItemState.LastTransition.TransitionTime
                                                                                                 DateTime
    GoodCount                               M01.GoodCount           UInt32; wraps to 0 after spec.counter_max
        browse path 4:Machines/6:M01/6:GoodCount (the process variables hang directly under the machine)
    ScrapCount                              M01.ScrapCount          UInt32; wraps like GoodCount
    StopReason                              M01.StopReason          String: MAINT | NO_MATERIAL | BREAKDOWN |
                                                                    any other; "" while executing
    CurrentOrder                            M01.CurrentOrder        String
    CurrentOperation                        M01.CurrentOperation    String
    CycleTimeMs                             M01.CycleTimeMs         Double
    Temperature                             M01.Temperature         Double (noise in auto mode)

Only for ``packml`` machines:

    PackMLState                             M02.PackMLState     Int32, the OPC 30050 / TR88 state code
        (the PackML NodeSet's StateNumbers): 0 Undefined, 1 Clearing, 2 Stopped, 3 Starting, 4 Idle,
        5 Suspended, 6 Execute, 7 Stopping, 8 Aborting, 9 Aborted, 10 Holding, 11 Held, 12 Unholding,
        13 Suspending, 14 Unsuspending, 15 Resetting, 16 Completing, 17 Complete
    PackML                                  M02.PackML          PackMLBaseObjectType
        browse path 4:Machines/6:M02/6:PackML (also organized by Objects/5:PackMLObjects)
    PackML.BaseStateMachine.CurrentState    M02.PackML.BaseStateMachine.CurrentState
        Aborting | Aborted | Cleared; browse path .../6:PackML/5:BaseStateMachine/0:CurrentState
    PackML.MachineState.CurrentState        M02.PackML.BaseStateMachine.MachineState.CurrentState
        Clearing | Stopping | Stopped | Running (empty text, null Id when Base is not Cleared)
    PackML.ExecuteState.CurrentState        M02.PackML.BaseStateMachine.MachineState.ExecuteState.CurrentState
        Idle | Starting | Execute | Completing | Complete | Resetting | Holding | Held | Unholding |
        Suspending | Suspended | Unsuspending (empty, null Id when MachineState is not Running)
    PackML.<level>.CurrentState.Id          <the CurrentState's NodeId>.Id      NodeId of the PackML State
    PackML.Status.UnitModeCurrent           M02.PackML.Status.UnitModeCurrent   Int32 1 (Produce)
    PackML.Status.MachSpeed                 M02.PackML.Status.MachSpeed         Float, nominal parts/min
    PackML.Status.CurMachSpeed              M02.PackML.Status.CurMachSpeed      Float, 0 unless Execute
    PackML.Status.EquipmentStarved          M02.PackML.Status.EquipmentStarved  Boolean, True in Suspended
    PackML.Status.EquipmentBlocked          M02.PackML.Status.EquipmentBlocked  Boolean, False

A packml machine's MachineryItemState follows its PackML state: Execute -> Executing; Undefined ->
NotAvailable; Aborting, Aborted, Holding, Held -> OutOfService; every other state -> NotExecuting.
The simulator jumps between PackML states directly (no transitional states are walked through).

Stop reasons (``stop_machine``): MAINT -> OutOfService / PackML Held; BREAKDOWN -> OutOfService / Aborted;
NO_MATERIAL -> NotExecuting / Suspended; any other reason -> NotExecuting / Stopped.

Machines start NotExecuting (PackML Idle) with zero counters. The values live in Python
(:class:`~.model.MachineStatus`); each ``start()`` builds a fresh asyncua server and writes them, so
counters survive a server restart while the clients' sessions and subscriptions do not.

Security: ``security="none"`` offers only SecurityPolicy None (the tests' and the load test's plain
server); ``"basic256sha256"`` offers only Basic256Sha256 SignAndEncrypt with a self-signed
certificate generated into ``cert_dir`` (``server_cert.der``, ``server_key.pem``; kept while it
fits). ``trusted_dir`` is the server's trust list: a client whose certificate is not in it (nor issued
by a CA in it) is refused at CreateSession (BadCertificateUntrusted), the folder read at every session;
without it any client certificate with a matching application URI is taken. ``users`` switches from
anonymous to username/password.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlparse

from asyncua import ua
from asyncua.server.server import Server
from asyncua.ua.object_ids import ObjectIds

from .address_space import SIM_NAMESPACE_URI, AddressSpace, nid, node_identifiers
from .auto import AutoDriver
from .model import (
    DEFAULT_MACHINES,
    MachineKind,
    MachineryItemState,
    MachineSpec,
    MachineStatus,
    PackMLState,
    check_unique,
)
from .nodeset_loader import PACKML_URI, NodeSetReport, load_nodesets
from .scripting import MachineScripting, UnknownMachineError
from .security import SERVER_APPLICATION_URI, ClientTrust, PasswordUserManager, ensure_server_certificate

DEFAULT_ENDPOINT = "opc.tcp://127.0.0.1:4840/plantbridge/"

SecurityMode = Literal["none", "basic256sha256"]

_log = logging.getLogger(__name__)


class MachineSimulator(MachineScripting):
    """OPC UA server with scriptable machines; see the module docstring for the node map."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        machines: Iterable[MachineSpec] | None = None,
        *,
        security: SecurityMode = "none",
        cert_dir: Path | None = None,
        users: dict[str, str] | None = None,
        trusted_dir: Path | None = None,
    ) -> None:
        if security not in ("none", "basic256sha256"):
            raise ValueError(f"security must be 'none' or 'basic256sha256', got {security!r}")
        specs = list(machines) if machines is not None else list(DEFAULT_MACHINES)
        if not specs:
            raise ValueError("at least one machine is needed")
        check_unique(specs)
        self.endpoint = endpoint
        self.security: SecurityMode = security
        self.cert_dir = cert_dir
        self.users = dict(users) if users else None
        self.trusted_dir = trusted_dir
        self._statuses: dict[str, MachineStatus] = {s.id: MachineStatus(s) for s in specs}
        self._server: Server | None = None
        self._space: AddressSpace | None = None
        self._namespace_index: int | None = None
        self._packml_loaded = False
        self._lifecycle = asyncio.Lock()
        self.nodeset_reports: list[NodeSetReport] = []
        self.writes = 0  # value writes that reached the address space (for load measurements)
        self.start_seconds = 0.0
        self._auto: AutoDriver | None = None
        self._clock: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- lifecycle

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def namespace_uri(self) -> str:
        return SIM_NAMESPACE_URI

    @property
    def namespace_index(self) -> int:
        if self._namespace_index is None:
            raise RuntimeError("the namespace index is known once the server started")
        return self._namespace_index

    @property
    def specs(self) -> list[MachineSpec]:
        return [status.spec for status in self._statuses.values()]

    @property
    def machine_ids(self) -> list[str]:
        return list(self._statuses)

    async def start(self) -> None:
        """Build a fresh asyncua server (NodeSets, machines, current values) and listen on the endpoint."""
        async with self._lifecycle:
            if self._server is not None:
                return
            loop = asyncio.get_running_loop()
            started = loop.time()
            server = await self._build_server()
            try:
                await server.start()
            except BaseException:
                await _quiet_stop(server)
                raise
            self._server = server
            self._clock = asyncio.create_task(_server_clock(server), name="machine-simulator-clock")
            self.start_seconds = loop.time() - started
            _log.info(
                "machine simulator listening on %s (%d machines, %s, built in %.1fs)",
                self.endpoint,
                len(self._statuses),
                self.security,
                self.start_seconds,
            )

    async def stop(self) -> None:
        """Stop auto mode and the server; the machines' values are kept for the next ``start()``."""
        await self.stop_auto()
        await self._stop_server()

    async def restart(self, down_seconds: float = 0.0) -> None:
        """Stop and start the server on the same endpoint (auto mode keeps running meanwhile)."""
        await self._stop_server()
        if down_seconds > 0:
            await asyncio.sleep(down_seconds)
        await self.start()

    async def _stop_server(self) -> None:
        async with self._lifecycle:
            server, self._server, self._space = self._server, None, None
            clock, self._clock = self._clock, None
            if clock is not None:
                clock.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await clock
            if server is not None:
                await _quiet_stop(server)
                _log.info("machine simulator on %s stopped", self.endpoint)

    async def __aenter__(self) -> MachineSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _build_server(self) -> Server:
        user_manager = PasswordUserManager(self.users) if self.users else None
        server = Server(user_manager=user_manager)
        await server.init()
        server.set_endpoint(self.endpoint)
        server.disable_clock()  # asyncua's clock loop makes stop() wait up to 1 s; _server_clock replaces it
        server.set_server_name("plantbridge machine simulator")
        await server.set_application_uri(SERVER_APPLICATION_URI)
        if self.security == "basic256sha256":
            if self.cert_dir is None:
                self.cert_dir = Path(tempfile.mkdtemp(prefix="plantbridge-opcua-"))
            cert, key = await ensure_server_certificate(
                self.cert_dir, SERVER_APPLICATION_URI, urlparse(self.endpoint).hostname
            )
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
            if self.trusted_dir is not None:
                await asyncio.to_thread(self.trusted_dir.mkdir, parents=True, exist_ok=True)
            server.set_certificate_validator(ClientTrust(self.trusted_dir))
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_identity_tokens([ua.UserNameIdentityToken] if self.users else [ua.AnonymousIdentityToken])

        self.nodeset_reports = await load_nodesets(server)
        self._packml_loaded = any(r.loaded for r in self.nodeset_reports if r.model_uri == PACKML_URI)
        space = AddressSpace(server)
        await space.setup(packml_loaded=self._packml_loaded)
        for status in self._statuses.values():
            await space.add_machine(status)
        self._space = space
        self._namespace_index = space.ns
        return server

    # ---------------------------------------------------------------- addressing

    def node_map(self, machine_id: str) -> dict[str, str]:
        """Logical name -> NodeId string (``ns=6;s=M01.GoodCount``) of every node of a machine."""
        status = self._status(machine_id)
        ns = self.namespace_index
        identifiers = node_identifiers(machine_id, status.spec.kind, packml_nodeset=self._packml_loaded)
        return {logical: f"ns={ns};s={identifier}" for logical, identifier in identifiers.items()}

    # ---------------------------------------------------------------- scripting

    # ---------------------------------------------------------------- auto mode

    @property
    def auto_running(self) -> bool:
        return self._auto is not None and self._auto.running

    async def start_auto(
        self,
        rate_hz: float = 2.0,
        seed: int | None = None,
        *,
        profile: Literal["realistic", "stress"] = "realistic",
        stop_probability: float = 0.01,
    ) -> None:
        """Background ticks: producing machines count, now and then stop with a reason and resume;
        temperatures drift with noise. ``profile="stress"`` changes ~10+ nodes of every machine per tick
        (load test). Replaces a running auto mode."""
        await self.stop_auto()
        self._auto = AutoDriver(list(self._statuses.values()), self._publish_many, lambda: self.writes, rate_hz, seed,
                                profile=profile, stop_probability=stop_probability)
        self._auto.start()

    async def stop_auto(self) -> None:
        if self._auto is not None:
            auto, self._auto = self._auto, None
            await auto.stop()

    def auto_stats(self) -> dict[str, Any]:
        return self._auto.stats() if self._auto is not None else {"running": False}

    # ---------------------------------------------------------------- internals


    async def _publish(self, status: MachineStatus) -> dict[str, Any]:
        if self._space is not None:
            self.writes += await self._space.sync(status)
        return status.as_dict()

    async def _publish_many(self, statuses: Iterable[MachineStatus]) -> None:
        space = self._space
        if space is None:
            return
        for status in statuses:
            self.writes += await space.sync(status)


async def _server_clock(server: Server) -> None:
    """Server_ServerStatus.CurrentTime once a second, as asyncua's own (disabled) clock does."""
    status_node = server.get_node(nid(ObjectIds.Server_ServerStatus))
    time_node = server.get_node(nid(ObjectIds.Server_ServerStatus_CurrentTime))
    while True:
        try:
            status = copy.copy(await status_node.read_value())
            status.CurrentTime = datetime.now(UTC)
            await status_node.write_value(status)
            await time_node.write_value(status.CurrentTime)
        except Exception:  # never let the clock take the server down
            _log.debug("server clock update failed", exc_info=True)
        await asyncio.sleep(1.0)


async def _quiet_stop(server: Server) -> None:
    try:
        await server.stop()
    except Exception:  # a half-started server may fail to stop cleanly; the socket is what matters
        _log.debug("error while stopping the asyncua server", exc_info=True)


__all__ = [
    "DEFAULT_ENDPOINT",
    "SIM_NAMESPACE_URI",
    "MachineKind",
    "MachineSimulator",
    "MachineSpec",
    "MachineryItemState",
    "PackMLState",
    "UnknownMachineError",
]
