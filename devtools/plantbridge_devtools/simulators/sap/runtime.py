"""What one simulator instance is made of, and what a request carries through it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

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


@dataclass
class Runtime:
    settings: Settings
    store: Store
    rules: RuleBook
    faults: FaultInjector
    sessions: SessionManager
    publisher: EventPublisher


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
