"""Persistence: idempotency ledger, audit trail (SQLAlchemy 2, SQLite by default)."""

from plantbridge.store.audit import AuditTrail
from plantbridge.store.db import Database, sqlite_url
from plantbridge.store.ledger import IdempotencyConflict, Ledger, LedgerState, request_hash

__all__ = ["AuditTrail", "Database", "IdempotencyConflict", "Ledger", "LedgerState", "request_hash", "sqlite_url"]
