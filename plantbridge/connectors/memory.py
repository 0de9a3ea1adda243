"""The in-memory reference systems, for tests: dict-backed, like httpx's `MockTransport`.

One `MemoryStore` holds what all five systems were asked. Each system is a port (`execute`) that
behaves like a real connector: on `retry=True` it looks the posting up by its external key before
posting again. The store itself, like a real system, ACCEPTS a second posting with the same external
key unless told to refuse duplicates (`refuse_duplicates=True`, as the SAP simulator does on request for
`ExternalSystemConfirmation`): exactly-once is the connector's look-up, and a test can prove it.

Every look-up and posting attempt goes into `store.log`, in order, so a test can assert that the
look-up preceded each re-post. Rules make the next calls fail: `business` (a rejection), `transient`
(a lock, a timeout), `lost` (the posting is kept but the answer is lost: a transient error after the
system acted), `crash` (a `KeyError`, as a connector defect would raise) or `hang` (the call waits
`code` seconds, default 60, before it goes on: an ERP that does not answer).

The SQLite reference (`connectors.reference`) is the dev stack's: shared between processes.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

from plantbridge.canonical.commands import StepResult
from plantbridge.canonical.order import ProductionOrder
from plantbridge.connectors.errors import BusinessRejection, OrderNotFound, TransientError, UnsupportedCommand
from plantbridge.connectors.ports import COMMAND_METHODS, AnyCommand
from plantbridge.connectors.reference import DOC_PREFIX, RecordedCall

RuleKind = Literal["business", "transient", "lost", "crash", "hang"]


@dataclass(frozen=True)
class LogEntry:
    """One look-up or posting attempt, in the order the systems saw them."""

    action: Literal["lookup", "post"]
    system: str
    operation: str
    order: str
    key: str
    outcome: str  # lookup: found | missing; post: posted | duplicate | rejected | transient | lost | crash


@dataclass
class _Rule:
    system: str
    operation: str
    order: str | None
    kind: RuleKind
    code: str | None
    message: str
    remaining: int | None


@dataclass
class MemoryStore:
    """What the in-memory systems were asked, and the rules that make them fail."""

    refuse_duplicates: bool = False
    postings: list[RecordedCall] = field(default_factory=list)
    log: list[LogEntry] = field(default_factory=list)
    # The ERP's orders, for `read_order` (the gateway's release intake).
    orders: dict[str, ProductionOrder] = field(default_factory=dict)
    _rules: list[_Rule] = field(default_factory=list)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- test controls (the same as the SQLite ReferenceStore's) ---------------------------------
    async def add_rule(self, system: str, operation: str, *, message: str, kind: RuleKind = "business",
                       code: str | None = None, order: str | None = None, times: int | None = None) -> int:
        self._rules.append(_Rule(system, operation, order, kind, code, message, times))
        return len(self._rules)

    async def clear_rules(self) -> None:
        self._rules.clear()

    async def calls(self, system: str | None = None, operation: str | None = None,
                    order: str | None = None) -> list[RecordedCall]:
        return [c for c in self.postings if (system is None or c.system == system)
                and (operation is None or c.operation == operation) and (order is None or c.order == order)]

    def entries(self, *, key: str | None = None, order: str | None = None) -> list[LogEntry]:
        return [e for e in self.log if (key is None or e.key == key) and (order is None or e.order == order)]

    def systems(self) -> MemorySystems:
        return MemorySystems(self)

    # -- what the systems do ---------------------------------------------------------------------
    def find(self, system: str, operation: str, order: str, key: str) -> RecordedCall | None:
        found = next((c for c in self.postings if c.system == system and c.external_key == key), None)
        self.log.append(LogEntry("lookup", system, operation, order, key, "found" if found else "missing"))
        return found

    def post(self, system: str, operation: str, order: ProductionOrder, payload: dict[str, Any],
             key: str) -> StepResult:
        def note(outcome: str) -> None:
            self.log.append(LogEntry("post", system, operation, order.number, key, outcome))

        rule = self._rule(system, operation, order.number)
        if rule is not None and rule.kind != "lost":
            note("rejected" if rule.kind == "business" else rule.kind)
            if rule.kind == "crash":
                raise KeyError(rule.message)
            if rule.kind == "transient":
                raise TransientError(rule.message, system=system, code=rule.code)
            raise BusinessRejection(rule.message, system=system, code=rule.code)
        if self.refuse_duplicates and any(c.system == system and c.external_key == key for c in self.postings):
            note("duplicate")
            raise BusinessRejection(f"a posting with external key {key} exists already", system=system,
                                    code="DUPLICATE")
        document = f"{DOC_PREFIX.get(operation, system.upper())}-{next(self._numbers):08d}"
        self.postings.append(RecordedCall(system, operation, order.number, key, document, payload))
        if rule is not None:  # kind "lost": the system acted, its answer never arrives
            note("lost")
            raise TransientError(rule.message, system=system, code=rule.code)
        note("posted")
        return StepResult(documents=[document])

    def hang_seconds(self, system: str, operation: str, order: str) -> float:
        """How long a `hang` rule holds this call (0: none); a rule with `times` holds that many calls."""
        seconds = 0.0
        for r in self._rules:
            if r.kind != "hang" or r.system != system or r.operation != operation or r.order not in (None, order):
                continue
            if r.remaining is not None:
                if r.remaining <= 0:
                    continue
                r.remaining -= 1
            seconds = max(seconds, float(r.code or 60))
        return seconds

    def _rule(self, system: str, operation: str, order: str) -> _Rule | None:
        for rule in self._rules:
            if rule.system != system or rule.operation != operation or rule.order not in (None, order):
                continue
            if rule.kind == "hang":
                continue
            if rule.remaining is not None:
                if rule.remaining <= 0:
                    continue
                rule.remaining -= 1
            return rule
        return None


def operation_of(cmd: AnyCommand) -> str:
    """The reference systems' operation name of a command (WMS names the direction)."""
    name = COMMAND_METHODS.get(type(cmd))
    if name is None:
        raise UnsupportedCommand(f"{type(cmd).__name__} is not a command of any port")
    if name == "stage" and getattr(cmd, "release", False):
        return "release_staging"
    if name == "stock_block":
        return "block" if getattr(cmd, "blocked", False) else "unblock"
    return name


class MemorySystem:
    """One in-memory system: a port whose `execute` looks up on retry, then posts."""

    def __init__(self, store: MemoryStore, system: str) -> None:
        self.store = store
        self.system = system

    async def execute(self, order: ProductionOrder, cmd: AnyCommand, *, key: str, retry: bool) -> StepResult:
        operation = operation_of(cmd)
        hang = self.store.hang_seconds(self.system, operation, order.number)
        if hang:
            await asyncio.sleep(hang)  # no answer; the activity's timeout cuts it off
        if retry:
            found = self.store.find(self.system, operation, order.number, key)
            if found is not None:
                return StepResult(documents=[found.document], message="found by external key", replayed=True)
        return self.store.post(self.system, operation, order, cmd.model_dump(mode="json"), key)


class MemoryErp(MemorySystem):
    """The in-memory ERP is also an `OrderSource`."""

    def put(self, order: ProductionOrder) -> None:
        """The ERP has this order (as created or changed there)."""
        self.store.orders[order.number] = order

    async def read_order(self, number: str) -> ProductionOrder:
        try:
            return self.store.orders[number]
        except KeyError:
            raise OrderNotFound(number, system="the in-memory ERP") from None


class MemorySystems:
    """All five in-memory systems of a plant, sharing one store."""

    def __init__(self, store: MemoryStore) -> None:
        self.erp = MemoryErp(store, "erp")
        self.mes = MemorySystem(store, "mes")
        self.qms = MemorySystem(store, "qms")
        self.wms = MemorySystem(store, "wms")
        self.notify = MemorySystem(store, "notify")


class MemoryRegistry:
    """Every plant gets the in-memory systems (tests of the saga)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._systems = MemorySystems(store)

    def for_plant(self, plant: str) -> MemorySystems:
        return self._systems
