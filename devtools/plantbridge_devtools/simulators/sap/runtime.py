"""What one simulator instance is made of, and what a request carries through it."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from plantbridge_devtools.simulators.sap.events import EventPublisher, PendingEvent
from plantbridge_devtools.simulators.sap.faults import FaultInjector
from plantbridge_devtools.simulators.sap.messages import Detail
from plantbridge_devtools.simulators.sap.odata import now_utc
from plantbridge_devtools.simulators.sap.rules import RuleBook
from plantbridge_devtools.simulators.sap.security import SessionManager
from plantbridge_devtools.simulators.sap.state import Store

DEFAULT_USERS = {"PLANTBRIDGE": "secret"}


@dataclass(frozen=True)
class Settings:
    client: str = "100"
    sid: str = "S4H"
    company_code: str = "1000"
    users: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_USERS))
    # A real S/4 may well take a second posting with the same external key: so does the simulator,
    # unless told otherwise (`--refuse-duplicates`, PLANTBRIDGE_SAP_SIM_REFUSE_DUPLICATES=1, or the
    # `refuse_duplicate_keys` rule): then ZPB/001 (confirmation) / ZPB/009 (material document).
    refuse_duplicate_keys: bool = False


@dataclass
class Runtime:
    settings: Settings
    store: Store
    rules: RuleBook
    faults: FaultInjector
    sessions: SessionManager
    publisher: EventPublisher
    # Every OData request as it arrived: method, service, path, query, status (GET /admin/traffic).
    traffic: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=20_000))

    def refuses_duplicate_keys(self) -> bool:
        return self.settings.refuse_duplicate_keys or self.rules.current.refuse_duplicate_keys


@dataclass
class Context:
    """Per-request (or per admin call) context: who, when, and what to report afterwards."""

    user: str
    now: datetime = field(default_factory=now_utc)
    events: list[PendingEvent] = field(default_factory=list)
    messages: list[Detail] = field(default_factory=list)

    @property
    def today(self) -> date:
        return self.now.date()

    def info(self, code: str, text: str, severity: str = "info") -> None:
        self.messages.append(Detail(code, text, severity=severity))
