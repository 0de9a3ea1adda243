"""Persistence: idempotency ledger, audit trail, gateway inbox and API keys (SQLAlchemy 2).

Importing this package loads every table module, so `Database.init()` creates all tables (db.py relies on it).
"""

from plantbridge.store.api_keys import ApiKeys, KeyInfo
from plantbridge.store.audit import AuditTrail
from plantbridge.store.db import Database, sqlite_url
from plantbridge.store.inbox import Inbox, InboxMessage
from plantbridge.store.ledger import IdempotencyConflict, Ledger, LedgerState, request_hash

__all__ = [
    "ApiKeys",
    "AuditTrail",
    "Database",
    "IdempotencyConflict",
    "Inbox",
    "InboxMessage",
    "KeyInfo",
    "Ledger",
    "LedgerState",
    "request_hash",
    "sqlite_url",
]
