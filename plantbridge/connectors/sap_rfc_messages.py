"""SAP RFC plumbing shared by the RFC connector: the connection protocol, the classification of
BAPI return messages (BAPIRET1 / BAPIRET2 / BAPIRETURN / BAPI_CORU_RETURN / BAPI_ORDER_RETURN) and
of pyrfc's exceptions.

Classification (the only place RFC errors are classified):

==========================================================  ===============================
what SAP / the RFC library answered                          plantbridge error
==========================================================  ===============================
message TYPE E or A, not a lock                              BusinessRejection(code=ID/NUMBER)
message TYPE E or A that is a lock (FLG_LOCKED = X, a code   TransientError(code=ID/NUMBER)
in ``LOCK_CODES``, or text "locked by", "currently being
processed", "lock conflict", ...)
message TYPE W / I / S                                       collected as info (StepResult)
``CommunicationError``, ``RFCLibError``, ``TimeoutError``,   TransientError
``ConnectionError``, any other ``RFCError``
``LogonError``, ``ExternalAuthorizationError``               BusinessRejection "SAP logon/
                                                             authorization failed: ..."
``ABAPApplicationError``, ``ABAPRuntimeError``,              BusinessRejection, unless the
``ExternalApplicationError``, ``ExternalRuntimeError``       text is a lock -> TransientError
==========================================================  ===============================

Exceptions are matched by class name along the MRO, so the mapping works without pyrfc installed
and with the test's fake classes of the same names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from plantbridge.connectors.errors import BusinessRejection, ConnectorError, TransientError

SYSTEM = "erp"

# Message classes/numbers known to mean "object locked, try again later" (extend per system).
# MC/601: generic enqueue failure ("object requested is currently locked by user &");
# M3/897: "plant data of material & is locked by user &".
LOCK_CODES: frozenset[str] = frozenset({"MC/601", "M3/897"})

_LOCK_TEXT = re.compile(
    r"\blocked by\b|\bcurrently locked\b|\bcurrently being processed\b|\bbeing processed by\b"
    r"|\balready being processed\b|\block conflict\b|\benqueue\b|\bgesperrt\b|\bwird gerade bearbeitet\b",
    re.IGNORECASE,
)

_TRANSIENT_EXC = {"CommunicationError", "RFCLibError", "TimeoutError", "ConnectionError", "socket.timeout"}
_LOGON_EXC = {"LogonError", "ExternalAuthorizationError"}
_BUSINESS_EXC = {"ABAPApplicationError", "ABAPRuntimeError", "ExternalApplicationError", "ExternalRuntimeError"}


class RfcConnection(Protocol):
    """What the connector needs of a ``pyrfc.Connection``."""

    def call(self, func_name: str, /, **params: Any) -> dict[str, Any]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SapMessage:
    type: str
    code: str  # "ID/NUMBER" (or BAPIRETURN's CODE)
    text: str
    locked: bool = False

    @property
    def is_error(self) -> bool:
        return self.type in ("E", "A")

    @property
    def is_lock(self) -> bool:
        return self.locked or self.code in LOCK_CODES or bool(_LOCK_TEXT.search(self.text))

    def line(self) -> str:
        return f"{self.type} {self.code}: {self.text}".strip()


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def to_message(row: Mapping[str, Any]) -> SapMessage | None:
    """One return row as a message; None for an empty row (BAPIs return blank RETURN structures)."""
    mtype = _text(row.get("TYPE")).upper()
    if not mtype:
        return None
    msg_id, number = _text(row.get("ID")), _text(row.get("NUMBER"))
    code = f"{msg_id}/{number}" if msg_id or number else _text(row.get("CODE"))
    return SapMessage(mtype, code, _text(row.get("MESSAGE")), _text(row.get("FLG_LOCKED")).upper() == "X")


def messages(*parts: Any) -> list[SapMessage]:
    """Messages from any mix of return structures (dict) and return tables (list of dict)."""
    out: list[SapMessage] = []
    for part in parts:
        rows: Iterable[Any] = part if isinstance(part, list) else [part] if isinstance(part, Mapping) else []
        for row in rows:
            if isinstance(row, Mapping) and (msg := to_message(row)) is not None:
                out.append(msg)
    return out


@dataclass
class Outcome:
    """The classified answer of one BAPI."""

    func: str
    messages: list[SapMessage] = field(default_factory=list)

    @property
    def errors(self) -> list[SapMessage]:
        return [m for m in self.messages if m.is_error]

    @property
    def info(self) -> list[SapMessage]:
        return [m for m in self.messages if not m.is_error]

    def error(self) -> ConnectorError | None:
        """The error to raise for E/A messages (a lock anywhere among them makes it transient)."""
        errors = self.errors
        if not errors:
            return None
        first = errors[0]
        details = [m.line() for m in errors]
        text = first.text or f"SAP {self.func} failed"
        if any(m.is_lock for m in errors):
            lock = next(m for m in errors if m.is_lock)
            return TransientError(lock.text or text, system=SYSTEM, code=lock.code or None, details=details)
        return BusinessRejection(text, system=SYSTEM, code=first.code or None, details=details)


def info_text(outcomes: Iterable[Outcome], limit: int = 500) -> str | None:
    lines = [m.line() for o in outcomes for m in o.info if m.text]
    return "; ".join(lines)[:limit] or None


def _class_names(exc: BaseException) -> list[str]:
    return [cls.__name__ for cls in type(exc).__mro__]


def exception_text(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    return _text(message) or _text(exc) or type(exc).__name__


def _exception_code(exc: BaseException) -> str | None:
    msg_class, msg_number = _text(getattr(exc, "msg_class", "")), _text(getattr(exc, "msg_number", ""))
    if msg_class or msg_number:
        return f"{msg_class}/{msg_number}"
    key = _text(getattr(exc, "key", ""))
    return key or None


def classify_exception(exc: BaseException, func: str) -> ConnectorError | None:
    """Map an exception raised by ``Connection.call`` to TransientError / BusinessRejection.

    None for an exception that is neither pyrfc's nor a network error (a bug: let it propagate).
    """
    if isinstance(exc, ConnectorError):
        return exc
    names = _class_names(exc)
    text = exception_text(exc)
    code = _exception_code(exc)
    details = [f"{names[0]} in {func}: {text}"]
    if any(n in _LOGON_EXC for n in names):
        return BusinessRejection(f"SAP logon/authorization failed: {text}", system=SYSTEM, code=code, details=details)
    if any(n in _BUSINESS_EXC for n in names):
        if _LOCK_TEXT.search(text) or code in LOCK_CODES:
            return TransientError(text, system=SYSTEM, code=code, details=details)
        return BusinessRejection(text, system=SYSTEM, code=code, details=details)
    if any(n in _TRANSIENT_EXC for n in names) or isinstance(exc, (TimeoutError, ConnectionError)):
        return TransientError(f"SAP RFC communication failed: {text}", system=SYSTEM, code=code, details=details)
    if "RFCError" in names:
        return TransientError(f"SAP RFC error: {text}", system=SYSTEM, code=code, details=details)
    return None
