"""Errors are classified once, here: transient (retry), business rejection (a person decides), an
order the ERP does not know (the gateway answers 404), or a command a connector cannot handle.

Any other exception out of a connector is a defect (e.g. a `KeyError` on an unexpected answer):
the activity boundary retries it a bounded number of times and then opens a supervisor exception.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every connector error."""

    def __init__(self, message: str, *, system: str, code: str | None = None, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.code = code
        self.details = details or []


class TransientError(ConnectorError):
    """Timeouts, 5xx, 429, locks: retried with backoff by Temporal."""


class BusinessRejection(ConnectorError):
    """The system refused the request on its merits (SAP message type E/A, validation).

    Never retried automatically: the saga opens an exception carrying the system's own message.
    """


class OrderNotFound(LookupError):
    """The ERP does not know the order (every `OrderSource.read_order` raises this; the gateway: 404).

    `OrderNotFound(number, system=...)` builds the message; `OrderNotFound(message)` takes one as it is."""

    def __init__(self, number: str, *, system: str | None = None, detail: str | None = None) -> None:
        text = f"order {number} does not exist in {system}" if system is not None else number
        super().__init__(f"{text} ({detail})" if detail else text)
        self.number = number
        self.system = system or "the ERP"


class UnsupportedCommand(TypeError):
    """A port was handed a command its system has no method for (a wiring defect, not retried forever)."""
