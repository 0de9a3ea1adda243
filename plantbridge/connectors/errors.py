"""Errors are classified once, here: transient (retry) or business rejection (a person decides)."""

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
    """The ERP does not know the order (the gateway answers 404)."""
